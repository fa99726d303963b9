package jsonbody_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/failready/failready/internal/jsonbody"
)

type newUser struct {
	Name string `json:"name"`
}

func (n newUser) Validate() error {
	if n.Name == "" {
		return errors.New("name is required")
	}
	return nil
}

// A body is one JSON object of the declared type, with no unknown field,
// that passes its own validation; anything else is refused with the 4xx
// that says why.
func ExampleDecodeValid() {
	refuse := func(w http.ResponseWriter, r *http.Request, status int, msg string) { fmt.Println(status, msg) }
	for _, body := range []string{`{"name":"ada"}`, `{"name":""}`, `{"name":"ada","admin":true}`, `{"name":`} {
		req := httptest.NewRequest("POST", "/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var n newUser
		if jsonbody.DecodeValid(httptest.NewRecorder(), req, &n, refuse) {
			fmt.Println("decoded", n.Name)
		}
	}
	// Output:
	// decoded ada
	// 422 name is required
	// 400 unknown field "admin"
	// 400 malformed JSON: unexpected end of body
}
