// Package shed caps the requests a service works on at once. Past the cap it
// answers 503 with Retry-After at once, instead of queueing: a saturated
// service that queues without bound answers everything late, times its
// callers out, and takes longer to recover than one that says no quickly.
//
// Depends on: the standard library only.
//
// Tests use: go.uber.org/goleak.
package shed

import (
	"encoding/json"
	"net/http"
)

// Refuse writes a refusal (status and a message). Pass the service's own
// error writer (respond.Error in this project) so that a refusal has the
// same JSON shape, request ID included, as every other error; nil writes
// {"error": msg} as JSON. A function rather than an import keeps this
// package liftable on its own.
type Refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)

// jsonRefusal is the default Refuse.
func jsonRefusal(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Limit serves at most max requests at once; onShed (a counter) is called
// for each refused one, and refuse writes its 503 (nil: jsonRefusal).
func Limit(max int, onShed func(*http.Request), refuse Refuse) func(http.Handler) http.Handler {
	if refuse == nil {
		refuse = jsonRefusal
	}
	slots := make(chan struct{}, max)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				if onShed != nil {
					onShed(r)
				}
				w.Header().Set("Retry-After", "1")
				refuse(w, r, http.StatusServiceUnavailable, "overloaded: too many requests in flight, retry shortly")
			}
		})
	}
}
