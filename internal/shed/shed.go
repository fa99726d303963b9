// Package shed caps the requests a service works on at once. Past the cap it
// answers 503 with Retry-After at once, instead of queueing: a saturated
// service that queues without bound answers everything late, times its
// callers out, and takes longer to recover than one that says no quickly.
package shed

import (
	"net/http"

	"github.com/failready/failready/internal/respond"
)

// Limit serves at most max requests at once; onShed (a counter) is called
// for each refused one.
func Limit(max int, onShed func(*http.Request)) func(http.Handler) http.Handler {
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
				respond.Error(w, r, http.StatusServiceUnavailable, "overloaded: too many requests in flight, retry shortly")
			}
		})
	}
}
