package router_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/failready/failready/app/router"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
)

func newRouter(t *testing.T, buf *logtest.Buffer) http.Handler {
	m := metrics.New(metrics.Options{}) // sends nothing; metrics are tested in internal/metrics
	t.Cleanup(func() { m.Close() })
	r := router.New(logging.New(buf, logging.Options{Service: "test"}), m, noop.NewMeterProvider())
	r.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.Post("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	r.Post("/only-post", func(w http.ResponseWriter, r *http.Request) {})
	r.Get("/hello", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
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
	h := newRouter(t, &buf)
	for _, c := range []struct{ method, path, allow, route string }{
		{http.MethodDelete, "/items/3", "GET, HEAD, POST", "/items/{id}"},
		{http.MethodHead, "/only-post", "POST", "/only-post"}, // HEAD goes with GET, and there is none
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		errorResponse(t, rec, http.StatusMethodNotAllowed)
		if allow := rec.Header().Get("Allow"); allow != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, allow, c.allow)
		}
		// Labelled with the route it matched: "unmatched" is for 404s.
		if l := logtest.Find(buf.Lines(t), map[string]any{"msg": "http request", "method": c.method, "path": c.path}); len(l) != 1 || l[0]["route"] != c.route {
			t.Errorf("%s %s: access lines %v, want route %q", c.method, c.path, l, c.route)
		}
	}
}

// TestHeadWorksWhereGetDoes: HEAD answers as GET would, headers and status,
// and no body (RFC 9110), over a real connection.
func TestHeadWorksWhereGetDoes(t *testing.T) {
	var buf logtest.Buffer
	srv := httptest.NewServer(newRouter(t, &buf))
	defer srv.Close()
	resp, err := http.Head(srv.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(b) != 0 || resp.Header.Get(requestid.Header) == "" {
		t.Fatalf("HEAD /hello: %d, body %q, request ID %q", resp.StatusCode, b, resp.Header.Get(requestid.Header))
	}
	if l := logtest.Find(buf.Lines(t), map[string]any{"msg": "http request", "method": "HEAD"}); len(l) != 1 || l[0]["route"] != "/hello" {
		t.Errorf("access lines %v", l)
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
