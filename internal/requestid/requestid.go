// Package requestid gives every request a correlation ID and carries it to the
// next hop.
//
// The ID is accepted from X-Request-ID (or X-Trace-ID, the header of the talk
// this project ports), generated as a UUID when absent, and replaced when it is
// not safe: inbound headers are untrusted input that ends up in logs, in
// response headers and in other services, so an ID longer than MaxLen or with a
// character outside [A-Za-z0-9._:+/=-] is never echoed. Every response carries
// the ID in X-Request-ID, so a user can quote it and an operator can grep for it.
//
// Depends on: github.com/google/uuid.
//
// Tests use: internal/logging, internal/logging/logtest.
package requestid

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"
)

// The header names are written in Go's canonical form, which is what goes on
// the wire anyway (HTTP header names are case-insensitive): http.Header's Get
// and Set would otherwise canonicalise "X-Request-ID" again on every call, an
// allocation each.
const (
	// Header is X-Request-ID: accepted, returned and forwarded.
	Header = "X-Request-Id"
	// LegacyHeader is X-Trace-ID, also accepted on the way in (never forwarded).
	LegacyHeader = "X-Trace-Id"
	// MaxLen bounds an accepted inbound ID.
	MaxLen = 128
	// logPreview bounds how much of a rejected value is logged.
	logPreview = 64
)

type ctxKey struct{}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID in ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Valid reports whether an inbound ID may be used as it is.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !safe(id[i]) {
			return false
		}
	}
	return true
}

func safe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '+', '/', '=':
		return true
	}
	return false
}

// New returns a fresh random ID.
func New() string { return uuid.NewString() }

// Middleware puts the request ID in the request's context and the response's
// X-Request-ID header before any other handler runs, so that errors and
// recovered panics carry it too. A rejected inbound value is logged, escaped
// and truncated, under the replacement ID.
func Middleware(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, in := inbound(r.Header)
			id := in
			if !Valid(id) {
				id = New()
			}
			ctx := NewContext(r.Context(), id)
			if in != "" && in != id {
				logger.WarnContext(ctx, "rejected inbound request id",
					"header", name,
					"value", Preview(in),
					"length", len(in))
			}
			w.Header().Set(Header, id)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// inbound returns the first of X-Request-ID and X-Trace-ID that is present.
func inbound(h http.Header) (name, value string) {
	if v := h.Get(Header); v != "" {
		return Header, v
	}
	return LegacyHeader, h.Get(LegacyHeader)
}

// Preview returns s truncated to a few dozen bytes and quoted with every
// non-ASCII or control byte escaped, safe to put in a log line.
func Preview(s string) string {
	if len(s) > logPreview {
		return strconv.QuoteToASCII(s[:logPreview]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// Transport forwards the request ID of an outgoing request's context to the
// next hop in X-Request-ID.
type Transport struct {
	// Base does the round trip; http.DefaultTransport when nil.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if id := FromContext(r.Context()); id != "" {
		r = r.Clone(r.Context()) // a RoundTripper must not modify its request
		r.Header.Set(Header, id)
	}
	return base.RoundTrip(r)
}
