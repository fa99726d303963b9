package requestid_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/failready/failready/internal/requestid"
)

// An inbound ID that passes the rule is kept, and returned; a hostile one
// is replaced by a fresh UUID. Either way the handler and the response have
// the same one.
func ExampleMiddleware() {
	h := requestid.Middleware(slog.New(slog.NewJSONHandler(io.Discard, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler sees", len(requestid.FromContext(r.Context())), "characters")
	}))
	for _, in := range []string{"abc-123", "abc\r\nSet-Cookie: a=b"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(requestid.Header, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out := rec.Header().Get(requestid.Header)
		fmt.Println("kept:", out == in, "valid:", requestid.Valid(out))
	}
	// Output:
	// handler sees 7 characters
	// kept: true valid: true
	// handler sees 36 characters
	// kept: false valid: true
}
