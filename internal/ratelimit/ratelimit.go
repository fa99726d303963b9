// Package ratelimit caps how fast clients may call a service: per client IP,
// so that one noisy client cannot starve the others, and overall, so that all
// clients together cannot exceed what the service was sized for. Both answer
// 429 with Retry-After and the X-RateLimit-* headers (go-chi/httprate), in
// the service's JSON error shape.
//
// The client is the IP of the connection (RemoteAddr), IPv6 by its /64: no
// header is trusted, right for a service exposed directly like service1.
// Behind a proxy, put chi's middleware.ClientIPFromXFF (with the proxy's
// range) ahead of this one and the IP it resolved is used instead; never key
// on a header any client can set.
//
// Depends on: github.com/go-chi/httprate, github.com/go-chi/chi/v5/middleware
// (only to read the client IP that its ClientIPFrom* middleware resolved).
//
// Tests use: github.com/go-chi/chi/v5, go.uber.org/goleak, internal/respond.
package ratelimit

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
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

// Limits of the two scopes, each a number of requests per Window.
type Limits struct {
	PerClient int
	Global    int
	Window    time.Duration
}

// Scopes, as passed to onLimited and counted in metrics.
const (
	ScopeClient = "client"
	ScopeGlobal = "global"
)

// Middleware applies the per-client limit, then the global one; onLimited is
// called for each refused request with its scope, and refuse writes its 429
// (nil: jsonRefusal).
func Middleware(l Limits, onLimited func(r *http.Request, scope string), refuse Refuse) func(http.Handler) http.Handler {
	if refuse == nil {
		refuse = jsonRefusal
	}
	refuseScope := func(scope string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if onLimited != nil {
				onLimited(r, scope)
			}
			refuse(w, r, http.StatusTooManyRequests,
				fmt.Sprintf("rate limit exceeded (%s): retry after %s", scope, w.Header().Get("Retry-After")+"s"))
		}
	}
	// Header names in Go's canonical form, as they go on the wire anyway:
	// httprate's defaults ("X-RateLimit-Limit") are canonicalised again, an
	// allocation each, on every response.
	perClient := httprate.NewRateLimiter(l.PerClient, l.Window, httprate.WithLimitHandler(refuseScope(ScopeClient)),
		httprate.WithResponseHeaders(httprate.ResponseHeaders{
			Limit: "X-Ratelimit-Limit", Remaining: "X-Ratelimit-Remaining", Reset: "X-Ratelimit-Reset",
			RetryAfter: "Retry-After",
		}))
	// The global limiter sets its headers only when it refuses: on every
	// other response they would just overwrite the per-client ones (and cost
	// three header writes per request).
	global := httprate.NewRateLimiter(l.Global, l.Window, httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", strconv.Itoa(int(l.Window.Seconds())))
		w.Header().Set("X-Ratelimit-Limit", strconv.Itoa(l.Global))
		w.Header().Set("X-Ratelimit-Remaining", "0")
		refuseScope(ScopeGlobal)(w, r)
	}), httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
	// RespondOnLimit with our own key rather than httprate.LimitBy, which
	// builds every key in a strings.Builder (two allocations per request
	// and limiter).
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if perClient.RespondOnLimit(w, r, clientKey(r)) || global.RespondOnLimit(w, r, "*") {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientKey is the client's IP: the one chi's ClientIPFrom* middleware
// resolved if one ran, the connection's otherwise; an IPv6 client by its /64
// (it controls all of it).
func clientKey(r *http.Request) string {
	ip := middleware.GetClientIP(r.Context())
	if ip == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = host
	}
	return httprate.CanonicalizeIP(ip)
}
