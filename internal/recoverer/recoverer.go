// Package recoverer turns a panic in a handler into a logged 500.
//
// A panic is a bug, so it is logged at error level with its value and stack
// and answered with the same JSON error body as any other error, request ID
// included; the process keeps serving. http.ErrAbortHandler is re-raised, as
// net/http uses it to abort a response on purpose.
//
// Depends on: the standard library only (log/slog).
//
// Tests use: internal/logging, internal/logging/logtest, internal/requestid,
// internal/respond.
package recoverer

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Refuse writes a refusal (status and a message). Pass the service's own
// error writer (respond.Error in this project) so that a refusal has the
// same JSON shape, request ID included, as every other error; nil writes
// {"error": msg} as JSON. A function rather than an import keeps this
// package liftable on its own.
type Refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)

// jsonRefusal is the default Refuse.
func jsonRefusal(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Middleware recovers panics from next, answers 500 through refuse (nil:
// jsonRefusal) and calls each onPanic hook (a counter, the span) with the
// panic value. Put it inside the access log so that the 500 is logged as a
// request too.
func Middleware(logger *slog.Logger, refuse Refuse, onPanic ...func(r *http.Request, rec any)) func(http.Handler) http.Handler {
	if refuse == nil {
		refuse = jsonRefusal
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(rec)
				}
				logger.ErrorContext(r.Context(), "panic recovered",
					"panic", fmt.Sprint(rec),
					"method", r.Method,
					"path", r.URL.Path,
					"stack", string(debug.Stack()))
				for _, f := range onPanic {
					f(r, rec)
				}
				refuse(w, r, http.StatusInternalServerError, "internal error")
			}()
			next.ServeHTTP(w, r)
		})
	}
}
