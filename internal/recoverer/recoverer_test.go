package recoverer_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/recoverer"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
)

func TestPanicBecomes500JSONWithStack(t *testing.T) {
	var buf logtest.Buffer
	logger := logging.New(&buf, logging.Options{Service: "test"})
	h := requestid.Middleware(logger)(recoverer.Middleware(logger, respond.Error)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("secret detail") })))

	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set(requestid.Header, "r-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	var b respond.ErrorBody
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &b) != nil || b.RequestID != "r-1" || strings.Contains(b.Error, "secret") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get(requestid.Header) != "r-1" {
		t.Fatal("panic response lacks X-Request-ID")
	}
	l := logtest.Find(buf.Lines(t), map[string]any{"msg": "panic recovered"})
	if len(l) != 1 || l[0].Str("request_id") != "r-1" || l[0].Str("panic") != "secret detail" ||
		!strings.Contains(l[0].Str("stack"), "recoverer_test.go") {
		t.Fatalf("panic line: %v", l)
	}
}

func TestDefaultRefusalIsJSON(t *testing.T) {
	logger := logging.New(io.Discard, logging.Options{Service: "test"})
	h := recoverer.Middleware(logger, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("x") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != `{"error":"internal error"}`+"\n" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
	}
}
