// Package user is the one data type of the demo and its validation rules,
// shared by the edge (service1), which rejects bad input before spending a
// hop on it, and the data owner (service2), which never trusts its callers.
//
// Depends on: the standard library only.
package user

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the length of the name columns, in characters.
const MaxNameLen = 30

// User is a stored row of the users table.
type User struct {
	ID        int64  `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// New is the body of POST /users.
type New struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// Validate checks both names and reports every problem at once.
func (n New) Validate() error {
	var errs []string
	for _, f := range []struct{ field, value string }{
		{"first_name", n.FirstName},
		{"last_name", n.LastName},
	} {
		if msg := checkName(f.value); msg != "" {
			errs = append(errs, f.field+" "+msg)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// checkName returns why s is not a valid name, or "".
func checkName(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.TrimSpace(s) == "":
		return "is required"
	case utf8.RuneCountInString(s) > MaxNameLen:
		return fmt.Sprintf("must be at most %d characters", MaxNameLen)
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return "must be printable text"
		}
	}
	return ""
}

// ParseID parses a user ID from a path: a positive decimal integer.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || s[0] == '+' {
		return 0, fmt.Errorf("user id must be a positive integer")
	}
	return id, nil
}
