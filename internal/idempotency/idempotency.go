// Package idempotency names the Idempotency-Key header and its rules, shared
// by the caller that sends a key and the service that honours it.
//
// A POST is not safe to retry: if the answer is lost, the caller cannot tell
// whether the row was created. With a key, the same on every attempt of one
// logical call, the server creates at most one row per key and answers a
// repeat with the first result, so the caller may retry (IETF draft
// "The Idempotency-Key HTTP Header Field"). The key is untrusted input on the
// server: bounded, from a safe character set.
//
// Depends on: github.com/google/uuid.
package idempotency

import "github.com/google/uuid"

// Header carries the key (canonical form, as Go writes it on the wire).
const Header = "Idempotency-Key"

// MaxLen bounds an accepted key.
const MaxLen = 64

// NewKey returns a fresh key for one logical call: reuse it on every retry.
func NewKey() string { return uuid.NewString() }

// Valid reports whether a received key may be used: 1 to MaxLen characters
// of [A-Za-z0-9_-] (a UUID is one).
func Valid(key string) bool {
	if key == "" || len(key) > MaxLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Rule says what Valid accepts, for error messages.
const Rule = Header + " must be 1-64 characters of [A-Za-z0-9_-]"
