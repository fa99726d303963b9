package shed_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/failready/failready/internal/shed"
)

// With one request in flight and a limit of one, the next is refused with a
// 503 at once instead of queueing.
func ExampleLimit() {
	inside, release := make(chan struct{}), make(chan struct{})
	h := shed.Limit(1, func(*http.Request) { fmt.Println("shed one") }, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		<-release
	}))
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); close(done) }()
	<-inside
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	close(release)
	<-done
	// Output:
	// shed one
	// 503 application/json
}
