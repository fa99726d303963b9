package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/failready/failready/app/user"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/requestid"
	"github.com/failready/failready/internal/respond"
	"github.com/failready/failready/internal/tracing"
)

// memUsers is an in-memory users store for handler tests; the real store is
// tested against MySQL in store_integration_test.go.
type memUsers struct {
	rows    []user.User
	err     error // returned by every call when set
	pingErr error
	calls   int
}

func (m *memUsers) ListUsers(ctx context.Context) ([]user.User, error) {
	m.calls++
	return m.rows, m.err
}

func (m *memUsers) GetUser(ctx context.Context, id int64) (user.User, error) {
	m.calls++
	if m.err != nil {
		return user.User{}, m.err
	}
	for _, u := range m.rows {
		if u.ID == id {
			return u, nil
		}
	}
	return user.User{}, errNotFound
}

func (m *memUsers) CreateUser(ctx context.Context, n user.New, key string) (user.User, error) {
	m.calls++
	if m.err != nil {
		return user.User{}, m.err
	}
	u := user.User{ID: int64(len(m.rows) + 1), FirstName: n.FirstName, LastName: n.LastName}
	m.rows = append(m.rows, u)
	return u, nil
}

func (m *memUsers) ExportUsers(ctx context.Context, limit int, each func(user.User) error) error {
	m.calls++
	if m.err != nil {
		return m.err
	}
	for _, u := range m.rows {
		if err := each(u); err != nil {
			return err
		}
	}
	return nil
}

func (m *memUsers) Ping(ctx context.Context, timeout time.Duration) error { return m.pingErr }

func serve(t *testing.T, s users, method, path, contentType, body string) (*httptest.ResponseRecorder, []logtest.Line) {
	t.Helper()
	var buf logtest.Buffer
	m := metrics.New(metrics.Options{}) // sends nothing; see metrics_test.go
	t.Cleanup(func() { m.Close() })
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	h := newServer(logging.New(&buf, logging.Options{Service: serviceName, Level: slog.LevelDebug}), m, tracing.Disabled(), noop.NewMeterProvider(), s, cfg, &health.Gate{})
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(requestid.Header, "test-rid")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get(requestid.Header) != "test-rid" {
		t.Errorf("%s %s: response lacks X-Request-ID", method, path)
	}
	return rec, buf.Lines(t)
}

func TestHandlers(t *testing.T) {
	long := strings.Repeat("a", 31)
	huge := `{"first_name":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name             string
		method, path, ct string
		body             string
		status           int
		want             string // in the body
		storeCalled      bool
	}{
		{"list", "GET", "/users", "", "", 200, `{"users":[{"id":1,"first_name":"joe","last_name":"cool"}]}`, true},
		{"get", "GET", "/users/1", "", "", 200, `{"id":1,"first_name":"joe","last_name":"cool"}`, true},
		{"get unknown id", "GET", "/users/99", "", "", 404, `"user not found"`, true},
		{"get bad id", "GET", "/users/abc", "", "", 400, "positive integer", false},
		{"get negative id", "GET", "/users/-1", "", "", 400, "positive integer", false},
		{"create", "POST", "/users", "application/json", `{"first_name":"ann","last_name":"lee"}`, 201, `{"id":2,"first_name":"ann","last_name":"lee"}`, true},
		{"create wrong content type", "POST", "/users", "text/plain", `{"first_name":"a","last_name":"b"}`, 415, "Content-Type", false},
		{"create bad json", "POST", "/users", "application/json", `{"first_name":`, 400, "malformed", false},
		{"create unknown field", "POST", "/users", "application/json", `{"first_name":"a","last_name":"b","id":7}`, 400, "unknown field", false},
		{"create wrong type", "POST", "/users", "application/json", `{"first_name":1,"last_name":"b"}`, 400, "must be a string", false},
		{"create too long", "POST", "/users", "application/json", `{"first_name":"` + long + `","last_name":"b"}`, 422, "at most 30", false},
		{"create missing", "POST", "/users", "application/json", `{}`, 422, "first_name is required; last_name is required", false},
		{"create oversized body", "POST", "/users", "application/json", huge, 413, "larger than", false},
		{"unknown route", "GET", "/nope", "", "", 404, "no route", false},
		{"wrong method", "DELETE", "/users", "", "", 405, "not allowed", false},
		{"healthz", "GET", "/healthz", "", "", 200, `"ok"`, false},
		{"readyz", "GET", "/readyz", "", "", 200, `"ready"`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &memUsers{rows: []user.User{{ID: 1, FirstName: "joe", LastName: "cool"}}}
			rec, _ := serve(t, s, c.method, c.path, c.ct, c.body)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Fatalf("got %d %s, want %d with %s", rec.Code, rec.Body, c.status, c.want)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if rec.Code >= 400 {
				var b respond.ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.RequestID != "test-rid" {
					t.Errorf("error body %s", rec.Body)
				}
			}
			if (s.calls > 0) != c.storeCalled {
				t.Errorf("store called %d times, want called=%v", s.calls, c.storeCalled)
			}
		})
	}
}

func TestCreateSetsLocation(t *testing.T) {
	rec, _ := serve(t, &memUsers{}, "POST", "/users", "application/json", `{"first_name":"a","last_name":"b"}`)
	if rec.Code != 201 || rec.Header().Get("Location") != "/users/1" {
		t.Fatalf("%d Location=%q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestStoreErrorsMapToHTTP(t *testing.T) {
	cases := map[string]struct {
		err    error
		status int
	}{
		"unavailable": {fmt.Errorf("%w: dial tcp: refused", errUnavailable), 503},
		"deadline":    {fmt.Errorf("query: %w", context.DeadlineExceeded), 504},
		"cancelled":   {context.Canceled, 499},
		"other":       {errors.New("Error 1146: table doesn't exist"), 500},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rec, _ := serve(t, &memUsers{err: c.err}, "GET", "/users", "", "")
			if rec.Code != c.status {
				t.Fatalf("%v: got %d, want %d", c.err, rec.Code, c.status)
			}
			if strings.Contains(rec.Body.String(), "1146") {
				t.Errorf("internal detail leaked: %s", rec.Body)
			}
		})
	}
}

func TestReadyzFailsWhenDatabaseDoes(t *testing.T) {
	rec, lines := serve(t, &memUsers{pingErr: errUnavailable}, "GET", "/readyz", "", "")
	if rec.Code != 503 {
		t.Fatalf("readyz %d", rec.Code)
	}
	if l := logtest.Find(lines, map[string]any{"msg": "not ready", "request_id": "test-rid"}); len(l) != 1 {
		t.Fatalf("not-ready line: %v", lines)
	}
	rec, _ = serve(t, &memUsers{pingErr: errUnavailable}, "GET", "/healthz", "", "")
	if rec.Code != 200 {
		t.Fatalf("liveness must not depend on MySQL: %d", rec.Code)
	}
}

func TestClassify(t *testing.T) {
	for _, err := range []error{
		&netError{}, fmt.Errorf("x: %w", &netError{}),
	} {
		if !errors.Is(classify(err), errUnavailable) {
			t.Errorf("%v not classified unavailable", err)
		}
	}
	if errors.Is(classify(context.DeadlineExceeded), errUnavailable) {
		t.Error("a deadline is not unavailability")
	}
}

type netError struct{}

func (*netError) Error() string   { return "dial tcp 127.0.0.1:1: connect: connection refused" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return false }

// An Idempotency-Key is untrusted input: a hostile one is refused before
// the body is read or the store is touched.
func TestBadIdempotencyKeyIsRefused(t *testing.T) {
	s := &memUsers{}
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Options{})
	t.Cleanup(func() { m.Close() })
	h := newServer(logging.New(io.Discard, logging.Options{Service: serviceName}), m, tracing.Disabled(), noop.NewMeterProvider(), s, cfg, &health.Gate{})
	for _, key := range []string{strings.Repeat("k", 65), "a b", "ключ", "x\u202e"} {
		req := httptest.NewRequest("POST", "/users", strings.NewReader(`{"first_name":"a","last_name":"b"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "Idempotency-Key must be") || s.calls != 0 {
			t.Errorf("key %q: %d %s, store calls %d", key, rec.Code, rec.Body, s.calls)
		}
	}
}
