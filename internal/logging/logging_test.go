package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/failready/failready/internal/httplabel"
	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/requestid"
)

func TestEveryLineNamesTheProcess(t *testing.T) {
	var buf logtest.Buffer
	logger := logging.New(&buf, logging.Options{Service: "svc", Version: "abc123", DeploymentID: "dep-1"})
	logger.Info("plain")
	logger.InfoContext(requestid.NewContext(context.Background(), "rid-1"), "in a request", "k", "v")
	logger.With("sub", "x").WarnContext(requestid.NewContext(context.Background(), "rid-2"), "derived")

	lines := buf.Lines(t)
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d", len(lines))
	}
	for _, l := range lines {
		for k, want := range map[string]string{"service": "svc", "version": "abc123", "deployment_id": "dep-1"} {
			if l.Str(k) != want {
				t.Errorf("line %v: %s = %q, want %q", l, k, l.Str(k), want)
			}
		}
		for _, k := range []string{"time", "level", "msg"} {
			if l[k] == nil {
				t.Errorf("line %v lacks %s", l, k)
			}
		}
	}
	if _, ok := lines[0]["request_id"]; ok {
		t.Error("a line outside a request has a request_id")
	}
	if lines[1].Str("request_id") != "rid-1" || lines[1].Str("k") != "v" {
		t.Errorf("line in a request: %v", lines[1])
	}
	if lines[2].Str("request_id") != "rid-2" || lines[2].Str("sub") != "x" {
		t.Errorf("derived logger keeps request_id: %v", lines[2])
	}
}

func TestLevelFilters(t *testing.T) {
	var buf logtest.Buffer
	logger := logging.New(&buf, logging.Options{Service: "svc", Level: slog.LevelWarn})
	logger.Info("dropped")
	logger.Error("kept")
	if lines := buf.Lines(t); len(lines) != 1 || lines[0].Str("msg") != "kept" {
		t.Fatalf("lines %v", lines)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		got, err := logging.ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "verbose", "info+2", "warning"} {
		if _, err := logging.ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) accepted", in)
		}
	}
}

func TestAccessLog(t *testing.T) {
	var buf logtest.Buffer
	logger := logging.New(&buf, logging.Options{Service: "svc"})
	r := chi.NewRouter()
	r.Use(requestid.Middleware(logger), logging.AccessLog(logger))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"a":1}`))
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	r.Get("/boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })

	do := func(path string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set(requestid.Header, "rid-"+strings.Trim(path, "/"))
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	do("/users/42")
	do("/healthz")
	do("/boom")
	do("/no/such/path")

	lines := buf.Lines(t)
	if len(lines) != 4 {
		t.Fatalf("want 4 access lines (the healthy probe's too: the pipeline decides), got %v", lines)
	}
	if lines[1].Str("level") != "INFO" || lines[1].Str("route") != "/healthz" || lines[1]["status"] != float64(200) {
		t.Errorf("probe line: %v", lines[1])
	}
	lines = append(lines[:1], lines[2:]...)
	l := lines[0]
	want := map[string]any{
		"msg": "http request", "level": "WARN", "method": "GET", "route": "/users/{id}",
		"path": "/users/42", "status": float64(418), "content_type": "application/json",
		"bytes": float64(7), "request_id": "rid-users/42",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v, want %v", k, l[k], v)
		}
	}
	if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v", l["duration_ms"])
	}
	if lines[1].Str("level") != "ERROR" || lines[1]["status"] != float64(502) {
		t.Errorf("5xx line: %v", lines[1])
	}
	if lines[2].Str("route") != httplabel.Unmatched || lines[2]["status"] != float64(404) {
		t.Errorf("unmatched route must not be the raw path: %v", lines[2])
	}
}

// TestInvisibleCharactersEscaped: a bidi override, a zero-width space, a C1
// control and a line separator reach the line as visible \uXXXX text, in
// strings, errors and groups alike; ordinary non-ASCII stays as it is.
func TestInvisibleCharactersEscaped(t *testing.T) {
	var buf bytes.Buffer
	logger := logging.New(&buf, logging.Options{Service: "test"})
	logger.Info("request\u202e",
		"path", "/files/\u202etxt.exe",
		"who", "Ren\u00e9 \u2603",
		"error", errors.New("bad \u200bname"),
		slog.Group("req", "header", "a\u0085b\u2028c"))
	out := buf.String()
	for _, raw := range []string{"\u202e", "\u200b", "\u0085", "\u2028"} {
		if strings.Contains(out, raw) {
			t.Errorf("raw %U in the line: %s", []rune(raw)[0], out)
		}
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"msg":   `request\u202E`,
		"path":  `/files/\u202Etxt.exe`,
		"who":   "René ☃",
		"error": `bad \u200Bname`,
		"req":   map[string]any{"header": `a\u0085b\u2028c`},
	}
	for k, v := range want {
		if fmt.Sprint(line[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %q, want %q", k, line[k], v)
		}
	}
}
