package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// -only sends one kind of request; -latencies writes one line per answer.
func TestOnlyAndLatencies(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "lat.txt")
	var out bytes.Buffer
	err := run(context.Background(), []string{"-target", srv.URL, "-only", "index", "-rate", "40", "-duration", "1s",
		"-latencies", file, "-json"}, func(string) string { return "" }, &out)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen["GET /"] != int(s.Requests) || s.Requests < 30 || s.Unexpected != 0 {
		t.Fatalf("requests seen %v, summary %+v", seen, s)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != int(s.Requests) {
		t.Fatalf("%d latency lines for %d requests", lines, s.Requests)
	}
}

func TestOnlyRejectsAnUnknownKind(t *testing.T) {
	err := run(context.Background(), []string{"-only", "nope", "-duration", "1s"}, func(string) string { return "" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "index") {
		t.Fatalf("error %v, want one listing the kinds", err)
	}
}
