// Package jsonbody decodes a request's JSON body strictly, and says why it
// could not: the content type must be application/json, in UTF-8 if it
// names a charset (415 otherwise), the body at most MaxBodyBytes (413, on
// the declared length before a byte is read when there is one), valid UTF-8
// holding exactly one JSON object with no unknown field and no trailing data
// (400), and, for DecodeValid, valid by its own rules (422).
//
// Lenient decoding is how bad input gets in: an unknown field ("admin":
// true) silently ignored, a second object after the first, a body of a
// gigabyte read into memory, a Latin-1 "é" that encoding/json turns into
// U+FFFD and stores. JSON is UTF-8 (RFC 8259). Each failure gets a message a
// client can act on.
//
// Depends on: the standard library only. DecodeValid writes its refusal
// through the function it is given (respond.Error in the services).
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes bounds every request body a service decodes.
const MaxBodyBytes = 1 << 20 // 1 MiB

// Error is a request body that cannot be decoded; Status is the 4xx that
// describes why.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Decode decodes exactly one JSON object from r's body into dst, strictly:
// the content type must be application/json (charset utf-8 if any), the body
// at most MaxBodyBytes and valid UTF-8, no unknown fields, no trailing data.
// Any failure is a *Error.
func Decode(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &Error{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &Error{http.StatusUnsupportedMediaType, "charset must be utf-8 (JSON is UTF-8)"}
	}
	// A declared length over the limit is refused before a byte is read:
	// Go's server sends "100 Continue" only once the handler reads, so a
	// client that asked first uploads nothing.
	if r.ContentLength > MaxBodyBytes {
		return decodeError(&http.MaxBytesError{Limit: MaxBodyBytes})
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return decodeError(err)
	}
	// encoding/json would turn invalid bytes into U+FFFD and carry on.
	if !utf8.Valid(b) {
		return &Error{http.StatusBadRequest, "body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{http.StatusBadRequest, "body must hold a single JSON object"}
	}
	return nil
}

func decodeError(err error) *Error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooBig    *http.MaxBytesError
		badStatus = http.StatusBadRequest
	)
	switch {
	case errors.As(err, &tooBig):
		return &Error{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}
	case errors.As(err, &syntax):
		return &Error{badStatus, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
	case errors.As(err, &typeErr):
		return &Error{badStatus, fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)}
	case errors.Is(err, io.EOF):
		return &Error{badStatus, "body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{badStatus, "malformed JSON: unexpected end of body"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		return &Error{badStatus, "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	}
	return &Error{badStatus, "malformed JSON"}
}

// Validator is a decoded body that checks its own fields.
type Validator interface{ Validate() error }

// Refuse writes a refusal (status and a message): respond.Error in the
// services, so that it has the shape, request ID included, of every error.
type Refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)

// DecodeValid decodes the body into dst with Decode and validates it. When
// either fails it answers the 4xx through refuse (422 for a well-formed body
// that breaks the rules) and returns false.
func DecodeValid(w http.ResponseWriter, r *http.Request, dst Validator, refuse Refuse) bool {
	if err := Decode(w, r, dst); err != nil {
		var e *Error
		errors.As(err, &e)
		refuse(w, r, e.Status, e.Msg)
		return false
	}
	if err := dst.Validate(); err != nil {
		refuse(w, r, http.StatusUnprocessableEntity, err.Error())
		return false
	}
	return true
}
