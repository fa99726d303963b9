package requestid_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/failready/failready/internal/logging"
	"github.com/failready/failready/internal/logging/logtest"
	"github.com/failready/failready/internal/requestid"
)

// serve runs one request through the middleware and returns the ID the
// handler saw, the response and the log lines.
func serve(t *testing.T, headers map[string]string) (seen string, rec *httptest.ResponseRecorder, lines []logtest.Line) {
	t.Helper()
	var buf logtest.Buffer
	logger := logging.New(&buf, logging.Options{Service: "test"})
	h := requestid.Middleware(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = requestid.FromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for k, v := range headers {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v} // raw: no validation, as a hostile client would send it
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return seen, rec, buf.Lines(t)
}

func TestAcceptsSafeIDs(t *testing.T) {
	for _, id := range []string{
		"abc-123",
		"3f1c6a8e-2b7d-4d0e-9f51-1a2b3c4d5e6f",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"req_1.2:3+4/5=",
		strings.Repeat("a", requestid.MaxLen),
	} {
		seen, rec, lines := serve(t, map[string]string{requestid.Header: id})
		if seen != id || rec.Header().Get(requestid.Header) != id {
			t.Errorf("id %q: handler saw %q, response header %q", id, seen, rec.Header().Get(requestid.Header))
		}
		if len(lines) != 0 {
			t.Errorf("id %q: unexpected log lines %v", id, lines)
		}
	}
}

func TestAcceptsLegacyHeader(t *testing.T) {
	seen, rec, _ := serve(t, map[string]string{requestid.LegacyHeader: "talk-id-1"})
	if seen != "talk-id-1" || rec.Header().Get(requestid.Header) != "talk-id-1" {
		t.Fatalf("X-Trace-ID not used: saw %q", seen)
	}
	// X-Request-ID wins when both are sent.
	seen, _, _ = serve(t, map[string]string{requestid.LegacyHeader: "old", requestid.Header: "new"})
	if seen != "new" {
		t.Fatalf("X-Request-ID should win, saw %q", seen)
	}
}

func TestGeneratesWhenAbsent(t *testing.T) {
	seen, rec, _ := serve(t, nil)
	if _, err := uuid.Parse(seen); err != nil {
		t.Fatalf("generated id %q is not a UUID: %v", seen, err)
	}
	if rec.Header().Get(requestid.Header) != seen {
		t.Fatalf("response header %q, want %q", rec.Header().Get(requestid.Header), seen)
	}
	other, _, _ := serve(t, nil)
	if other == seen {
		t.Fatal("two requests got the same generated id")
	}
}

func TestReplacesHostileIDs(t *testing.T) {
	hostile := map[string]string{
		"too long":          strings.Repeat("a", requestid.MaxLen+1),
		"huge":              strings.Repeat("x", 60_000),
		"newline injection": "abc\n{\"level\":\"ERROR\",\"msg\":\"forged\"}",
		"carriage return":   "abc\r\nSet-Cookie: a=b",
		"quote and brace":   `abc","admin":true,"x":"`,
		"space":             "abc def",
		"null byte":         "abc\x00def",
		"unicode":           "abc\u202edef",
		"invalid utf-8":     "abc\xff\xfe",
		"html":              "<script>alert(1)</script>",
		"ansi escape":       "\x1b[31mred",
		"semicolon":         "a;b",
	}
	for name, id := range hostile {
		t.Run(name, func(t *testing.T) {
			seen, rec, lines := serve(t, map[string]string{requestid.Header: id})
			if _, err := uuid.Parse(seen); err != nil {
				t.Fatalf("hostile id replaced by %q, want a fresh UUID", seen)
			}
			if got := rec.Header().Get(requestid.Header); got != seen {
				t.Fatalf("response header %q, want the replacement %q", got, seen)
			}
			rej := logtest.Find(lines, map[string]any{"msg": "rejected inbound request id"})
			if len(rej) != 1 {
				t.Fatalf("want one rejection line, got %v", lines)
			}
			l := rej[0]
			if l.Str("request_id") != seen || l.Str("header") != requestid.Header {
				t.Errorf("rejection line fields: %v", l)
			}
			v := l.Str("value")
			if len(v) > 64*4+8 { // escaped preview of at most 64 bytes, quoted
				t.Errorf("logged value not truncated: %d bytes", len(v))
			}
			for _, c := range v {
				if c < 0x20 || c > 0x7e {
					t.Errorf("logged value has unescaped %q: %q", c, v)
				}
			}
			if int(l["length"].(float64)) != len(id) {
				t.Errorf("length %v, want %d", l["length"], len(id))
			}
		})
	}
}

func TestTransportForwardsID(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get(requestid.Header)
	}))
	defer srv.Close()
	client := &http.Client{Transport: requestid.Transport{}}

	req, _ := http.NewRequestWithContext(requestid.NewContext(t.Context(), "fwd-1"), http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "fwd-1" {
		t.Fatalf("next hop got %q, want fwd-1", got)
	}
	if req.Header.Get(requestid.Header) != "" {
		t.Fatal("Transport modified the caller's request")
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "" {
		t.Fatalf("no id in context, next hop got %q", got)
	}
}

func TestPreview(t *testing.T) {
	if got := requestid.Preview("a\nb"); got != `"a\nb"` {
		t.Errorf("Preview escapes: got %s", got)
	}
	if got := requestid.Preview(strings.Repeat("z", 100)); !strings.HasSuffix(got, `"...`) || len(got) != 64+2+3 {
		t.Errorf("Preview truncates: got %s", got)
	}
}

// The constants are in Go's canonical form, so that Header.Get and Set do
// not allocate a canonicalised copy on every request.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, h := range []string{requestid.Header, requestid.LegacyHeader} {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("%q is not canonical (%q)", h, c)
		}
	}
}
