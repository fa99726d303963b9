package envconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/failready/failready/internal/envconfig"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	r := envconfig.New(env(nil))
	if r.String("S", "d") != "d" || r.Int("I", 7, 0, 10) != 7 ||
		r.Duration("D", time.Second, 0, time.Minute) != time.Second ||
		r.HostPort("A", ":8000") != ":8000" || r.URL("U", "http://x:1").Host != "x:1" {
		t.Fatal("defaults not returned")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestValues(t *testing.T) {
	r := envconfig.New(env(map[string]string{
		"S": "v", "I": "9", "D": "250ms", "A": "127.0.0.1:9", "U": "https://h:2/p", "O": "b",
	}))
	if r.String("S", "d") != "v" || r.Int("I", 7, 0, 10) != 9 ||
		r.Duration("D", time.Second, 0, time.Minute) != 250*time.Millisecond ||
		r.HostPort("A", ":8000") != "127.0.0.1:9" || r.URL("U", "http://x:1").String() != "https://h:2/p" ||
		r.OneOf("O", "a", "a", "b") != "b" {
		t.Fatal("values not parsed")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheVariableOnOneLine(t *testing.T) {
	r := envconfig.New(env(map[string]string{
		"I": "nine", "J": "11", "D": "5", "E": "2h", "A": "localhost", "U": "ftp://x", "O": "c",
	}))
	r.Int("I", 1, 0, 10)
	r.Int("J", 1, 0, 10)
	r.Duration("D", time.Second, 0, time.Minute)
	r.Duration("E", time.Second, 0, time.Minute)
	r.HostPort("A", ":1")
	r.URL("U", "http://x")
	r.OneOf("O", "a", "a", "b")
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans lines: %q", msg)
	}
	for _, want := range []string{
		`I: "nine" is not an integer`, "J: 11 is out of range", `D: "5" is not a duration`,
		"E: 2h0m0s is out of range", `A: "localhost" is not host:port`, `U: "ftp://x" is not an absolute http(s) URL`,
		`O: "c" is not one of a, b`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}
