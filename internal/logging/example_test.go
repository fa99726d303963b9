package logging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/failready/failready/internal/logging"
)

// One JSON line per request, by route pattern, with the fields every line
// carries (time and duration left out here: they change on every run).
func ExampleAccessLog() {
	var out bytes.Buffer
	logger := logging.New(&out, logging.Options{Service: "service1", Version: "abc123", DeploymentID: "dev"})
	r := chi.NewRouter()
	r.Use(logging.AccessLog(logger))
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		panic(err)
	}
	for _, k := range []string{"level", "msg", "service", "version", "deployment_id", "method", "route", "path", "status"} {
		fmt.Printf("%s=%v ", k, line[k])
	}
	fmt.Println()
	// Output:
	// level=WARN msg=http request service=service1 version=abc123 deployment_id=dev method=GET route=/users/{id} path=/users/42 status=404
}
