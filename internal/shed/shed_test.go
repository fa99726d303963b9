package shed_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/failready/failready/internal/shed"
)

func TestShedsPastTheLimitAtOnce(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	shedCount := 0
	h := shed.Limit(2, func(*http.Request) { shedCount++ }, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			codes <- rec.Code
		})
	}
	<-entered
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil)) // the third: no slot, answered at once
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || shedCount != 1 ||
		rec.Body.String() != `{"error":"overloaded: too many requests in flight, retry shortly"}`+"\n" {
		t.Fatalf("third request: %d %v %s, shed %d", rec.Code, rec.Header(), rec.Body, shedCount)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("admitted request: %d", c)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("after the slots freed: %d", rec.Code)
	}
}

func TestRefusalThroughTheServiceWriter(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	h := shed.Limit(1, nil, func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte("custom: " + msg))
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	close(release)
	<-done
	if rec.Code != 503 || rec.Body.String() != "custom: overloaded: too many requests in flight, retry shortly" {
		t.Fatalf("refusal %d %q", rec.Code, rec.Body)
	}
}
