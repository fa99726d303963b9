// Package recoverer turns a panic in a handler into a logged 500.
//
// A panic is a bug, so it is logged at error level with its value and stack
// and answered with the same JSON error body as any other error, request ID
// included; the process keeps serving. http.ErrAbortHandler is re-raised, as
// net/http uses it to abort a response on purpose.
package recoverer

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/failready/failready/internal/respond"
)

// Middleware recovers panics from next and calls each onPanic hook (a
// counter, the span) with the panic value. Put it inside the access log so
// that the 500 is logged as a request too.
func Middleware(logger *slog.Logger, onPanic ...func(r *http.Request, rec any)) func(http.Handler) http.Handler {
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
				respond.Error(w, r, http.StatusInternalServerError, "internal error")
			}()
			next.ServeHTTP(w, r)
		})
	}
}
