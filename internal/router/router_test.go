package router_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logtest"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/router"
)

func newRouter(t *testing.T, buf *logtest.Buffer) http.Handler {
	m := metrics.New(metrics.Options{}) // sends nothing; metrics are tested in internal/metrics
	t.Cleanup(func() { m.Close() })
	r := router.New(logging.New(buf, logging.Options{Service: "test"}), m)
	r.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.Post("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	r.Get("/abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	return r
}

// errorResponse checks the shape every error response must have.
func errorResponse(t *testing.T, rec *httptest.ResponseRecorder, status int) respond.ErrorBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var b respond.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
	}
	if b.Error == "" || b.RequestID == "" || b.RequestID != rec.Header().Get(requestid.Header) {
		t.Fatalf("error body %+v, X-Request-ID %q", b, rec.Header().Get(requestid.Header))
	}
	return b
}

func TestUnknownRouteIs404JSON(t *testing.T) {
	var buf logtest.Buffer
	rec := httptest.NewRecorder()
	newRouter(t, &buf).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope/"+strings.Repeat("x", 500), nil))
	b := errorResponse(t, rec, http.StatusNotFound)
	if len(b.Error) > 150 {
		t.Errorf("404 echoes an unbounded path: %d bytes", len(b.Error))
	}
}

func TestWrongMethodIs405JSONWithAllow(t *testing.T) {
	var buf logtest.Buffer
	rec := httptest.NewRecorder()
	newRouter(t, &buf).ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/items/3", nil))
	errorResponse(t, rec, http.StatusMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); allow != "GET, POST" {
		t.Fatalf("Allow %q, want \"GET, POST\"", allow)
	}
}

func TestPanicIsLogged500AndServingGoesOn(t *testing.T) {
	var buf logtest.Buffer
	h := newRouter(t, &buf)
	req := httptest.NewRequest(http.MethodGet, "/panic", nil)
	req.Header.Set(requestid.Header, "panic-rid")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b := errorResponse(t, rec, http.StatusInternalServerError)
	if b.RequestID != "panic-rid" || strings.Contains(b.Error, "kaboom") {
		t.Fatalf("body %+v: must carry the ID and not leak the panic", b)
	}

	lines := buf.Lines(t)
	p := logtest.Find(lines, map[string]any{"msg": "panic recovered", "request_id": "panic-rid", "level": "ERROR"})
	if len(p) != 1 || p[0].Str("panic") != "kaboom" || !strings.Contains(p[0].Str("stack"), "router_test.go") {
		t.Fatalf("panic line: %v", lines)
	}
	acc := logtest.Find(lines, map[string]any{"msg": "http request", "request_id": "panic-rid", "status": float64(500)})
	if len(acc) != 1 || acc[0].Str("route") != "/panic" {
		t.Fatalf("access line for the panic: %v", lines)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/items/1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after a panic: %d", rec.Code)
	}
}

func TestAbortHandlerIsNotSwallowed(t *testing.T) {
	var buf logtest.Buffer
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler re-raised", rec)
		}
	}()
	newRouter(t, &buf).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/abort", nil))
}
