package respond

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds every request body a service decodes.
const MaxBodyBytes = 1 << 20 // 1 MiB

// DecodeError is a request body that cannot be decoded; Status is the 4xx
// that describes why.
type DecodeError struct {
	Status int
	Msg    string
}

func (e *DecodeError) Error() string { return e.Msg }

// DecodeJSON decodes exactly one JSON object from r's body into dst, strictly:
// the content type must be application/json, the body at most MaxBodyBytes,
// no unknown fields, no trailing data. Any failure is a *DecodeError.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &DecodeError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeError(err)
		}
		return &DecodeError{http.StatusBadRequest, "body must hold a single JSON object"}
	}
	return nil
}

func decodeError(err error) *DecodeError {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooBig    *http.MaxBytesError
		badStatus = http.StatusBadRequest
	)
	switch {
	case errors.As(err, &tooBig):
		return &DecodeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}
	case errors.As(err, &syntax):
		return &DecodeError{badStatus, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
	case errors.As(err, &typeErr):
		return &DecodeError{badStatus, fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)}
	case errors.Is(err, io.EOF):
		return &DecodeError{badStatus, "body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{badStatus, "malformed JSON: unexpected end of body"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		return &DecodeError{badStatus, "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	}
	return &DecodeError{badStatus, "malformed JSON"}
}

// Validator is a decoded body that checks its own fields.
type Validator interface{ Validate() error }

// DecodeValid decodes the body into dst with DecodeJSON and validates it.
// When either fails it answers the 4xx itself (422 for a well-formed body
// that breaks the rules) and returns false.
func DecodeValid(w http.ResponseWriter, r *http.Request, dst Validator) bool {
	if err := DecodeJSON(w, r, dst); err != nil {
		var de *DecodeError
		errors.As(err, &de)
		Error(w, r, de.Status, de.Msg)
		return false
	}
	if err := dst.Validate(); err != nil {
		Error(w, r, http.StatusUnprocessableEntity, err.Error())
		return false
	}
	return true
}
