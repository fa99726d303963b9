// Package deadline gives every request a time budget and passes what is left
// of it to the next hop.
//
// The edge (service1) decides how long a whole request may take; each hop
// below it gets the remaining budget in the Request-Timeout header and never
// works past it: a service2 that keeps querying after service1 has given up
// wastes a connection on an answer nobody reads. Each service also has its
// own limit, and the effective deadline is the shorter of the two.
//
//	service1: REQUEST_TIMEOUT  ─ budget left ─>  service2: min(its REQUEST_TIMEOUT, header)
//
// Depends on: the standard library only.
//
// Tests use: go.uber.org/goleak.
package deadline

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Header carries the caller's remaining budget, in milliseconds.
const Header = "Request-Timeout"

// Middleware bounds each request's context by limit, or by the caller's
// remaining budget in Header when that is shorter. A malformed or
// non-positive header is ignored: the service's own limit still holds.
func Middleware(limit time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := limit
			if v := r.Header.Get(Header); v != "" { // most requests have none: skip the parse error
				if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
					d = min(d, time.Duration(ms)*time.Millisecond)
				}
			}
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Transport sends the remaining budget of each outgoing request's context in
// Header. Requests without a deadline go without it.
type Transport struct {
	Base http.RoundTripper // http.DefaultTransport when nil
}

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if dl, ok := r.Context().Deadline(); ok {
		left := time.Until(dl).Milliseconds()
		if left < 1 {
			left = 1 // already spent: the callee should give up at once
		}
		r = r.Clone(r.Context())
		r.Header.Set(Header, strconv.FormatInt(left, 10))
	}
	return base.RoundTrip(r)
}
