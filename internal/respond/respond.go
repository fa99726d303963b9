// Package respond writes JSON responses, and maps every error to one JSON
// shape that carries the request ID:
//
//	{"error": "user not found", "request_id": "3f1c..."}
//
// Errors are mapped to HTTP once, at the edge of each service, through Error;
// a handler never writes an error body by hand. The guards (shed, ratelimit,
// recoverer, health) and jsonbody take Error as the writer of their refusals.
//
// Depends on: internal/requestid, deliberately: the request ID in every
// error body is this project's contract.
package respond

import (
	"encoding/json"
	"net/http"

	"github.com/failready/failready/internal/requestid"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// JSON writes v as the JSON body with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error (an unmarshalable type) gets here.
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Error writes the JSON error body for status with the request's ID.
func Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	JSON(w, status, ErrorBody{Error: msg, RequestID: requestid.FromContext(r.Context())})
}

// NotFound answers an unknown route.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Error(w, r, http.StatusNotFound, "no route for "+r.Method+" "+truncate(r.URL.Path, 100))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
