package deadline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/failready/failready/internal/deadline"
)

func budget(t *testing.T, limit time.Duration, header string) time.Duration {
	t.Helper()
	var left time.Duration
	h := deadline.Middleware(limit)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		left = time.Until(dl)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	if header != "" {
		req.Header.Set(deadline.Header, header)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return left
}

func TestMiddlewareTakesTheShorter(t *testing.T) {
	near := func(got, want time.Duration) bool { return got <= want && got > want-500*time.Millisecond }
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"", 2 * time.Second},
		{"800", 800 * time.Millisecond},
		{"60000", 2 * time.Second}, // a caller cannot extend the service's own limit
		{"abc", 2 * time.Second},
		{"-5", 2 * time.Second},
		{"0", 2 * time.Second},
	} {
		if got := budget(t, 2*time.Second, c.header); !near(got, c.want) {
			t.Errorf("header %q: budget %s, want about %s", c.header, got, c.want)
		}
	}
}

func TestTransportSendsWhatIsLeft(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get(deadline.Header) }))
	defer srv.Close()
	c := &http.Client{Transport: deadline.Transport{}}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ms, err := strconv.Atoi(got)
	if err != nil || ms > 1500 || ms < 1000 {
		t.Fatalf("%s = %q, want the remaining ~1500 ms", deadline.Header, got)
	}
	if req.Header.Get(deadline.Header) != "" {
		t.Fatal("the caller's request was modified")
	}

	req, _ = http.NewRequest("GET", srv.URL, nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "" {
		t.Fatalf("no deadline, but sent %q", got)
	}
}
