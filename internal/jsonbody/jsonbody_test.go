package jsonbody_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
