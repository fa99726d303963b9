package recoverer_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/failready/failready/internal/recoverer"
)

// A panic becomes a logged 500 JSON answer, and the process keeps serving.
func ExampleMiddleware() {
	counted := func(r *http.Request, rec any) { fmt.Println("panic:", rec) }
	h := recoverer.Middleware(slog.New(slog.NewJSONHandler(io.Discard, nil)), nil, counted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("honeypot")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/honeypot", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// panic: honeypot
	// 500 application/json
}
