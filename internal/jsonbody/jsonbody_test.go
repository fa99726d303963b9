package jsonbody_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/internal/jsonbody"
)

type body struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func TestDecodeJSON(t *testing.T) {
	huge := `{"name":"` + strings.Repeat("a", jsonbody.MaxBodyBytes) + `"}`
	cases := []struct {
		name, ct, body string
		status         int // 0: success
		msg            string
	}{
		{"ok", "application/json", `{"name":"a","age":3}`, 0, ""},
		{"ok with charset", "application/json; charset=utf-8", `{"name":"a"}`, 0, ""},
		{"no content type", "", `{"name":"a"}`, 415, "Content-Type"},
		{"text/plain", "text/plain", `{"name":"a"}`, 415, "Content-Type"},
		{"form", "application/x-www-form-urlencoded", `name=a`, 415, "Content-Type"},
		{"bad media type", "application/json;;;", `{}`, 415, "Content-Type"},
		{"empty", "application/json", ``, 400, "empty"},
		{"malformed", "application/json", `{"name":`, 400, "malformed"},
		{"syntax", "application/json", `{"name" "a"}`, 400, "malformed JSON at byte"},
		{"wrong type", "application/json", `{"age":"three"}`, 400, `field "age" must be a int`},
		{"unknown field", "application/json", `{"name":"a","admin":true}`, 400, `unknown field "admin"`},
		{"two objects", "application/json", `{"name":"a"}{"name":"b"}`, 400, "single JSON object"},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 400, "single JSON object"},
		{"array", "application/json", `[1,2]`, 400, "must be a"},
		{"too large", "application/json", huge, 413, "larger than"},
		{"charset upper case", "application/json; charset=UTF-8", `{"name":"a"}`, 0, ""},
		{"latin1 charset", "application/json; charset=latin1", "{\"name\":\"Ren\xe9\"}", 415, "charset must be utf-8"},
		{"invalid UTF-8", "application/json", "{\"name\":\"Ren\xe9\"}", 400, "not valid UTF-8"},
		{"overlong encoding", "application/json", "{\"name\":\"\xc0\xaf\"}", 400, "not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			var dst body
			err := jsonbody.Decode(httptest.NewRecorder(), req, &dst)
			if c.status == 0 {
				if err != nil || dst.Name != "a" {
					t.Fatalf("err %v, dst %+v", err, dst)
				}
				return
			}
			var de *jsonbody.Error
			if !errors.As(err, &de) {
				t.Fatalf("want *jsonbody.Error, got %v", err)
			}
			if de.Status != c.status || !strings.Contains(de.Msg, c.msg) {
				t.Fatalf("got %d %q, want %d containing %q", de.Status, de.Msg, c.status, c.msg)
			}
		})
	}
}

type named struct {
	Name string `json:"name"`
}

func (n *named) Validate() error {
	if n.Name == "" {
		return errors.New("name is required")
	}
	return nil
}

// DecodeValid answers through the given writer: the decode error's 4xx, or
// 422 for a body that breaks its own rules.
// TestValidUTF8Kept: non-ASCII in UTF-8 arrives as it was sent.
func TestValidUTF8Kept(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"René \u00e9 ☃"}`))
	req.Header.Set("Content-Type", "application/json")
	var dst body
	if err := jsonbody.Decode(httptest.NewRecorder(), req, &dst); err != nil || dst.Name != "René é ☃" {
		t.Fatalf("%q, %v", dst.Name, err)
	}
}

// TestDeclaredLengthRefusedUnread: a body declared over the limit is refused
// without reading it, so that a client sending "Expect: 100-continue" is
// never told to go on: over a real connection, the 413 comes back and the
// server never asked for the body.
func TestDeclaredLengthRefusedUnread(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var dst body
		err := jsonbody.Decode(w, r, &dst)
		var de *jsonbody.Error
		if errors.As(err, &de) {
			w.WriteHeader(de.Status)
		}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 2<<20)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413 before any 100 Continue", resp.StatusCode)
	}
}

func TestDecodeValidRefuses(t *testing.T) {
	for body, want := range map[string]string{
		`{"name":"a"}`: "",
		`{"name":""}`:  "422 name is required",
		`{"name":`:     "400 malformed JSON: unexpected end of body",
	} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		got := ""
		ok := jsonbody.DecodeValid(httptest.NewRecorder(), req, &named{}, func(_ http.ResponseWriter, _ *http.Request, status int, msg string) {
			got = fmt.Sprint(status, " ", msg)
		})
		if got != want || ok != (want == "") {
			t.Errorf("%s: refused %q (ok %v), want %q", body, got, ok, want)
		}
	}
}
