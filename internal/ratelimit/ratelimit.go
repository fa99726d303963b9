// Package ratelimit caps how fast clients may call a service: per client IP,
// so that one noisy client cannot starve the others, and overall, so that all
// clients together cannot exceed what the service was sized for. Both answer
// 429 with Retry-After and the X-RateLimit-* headers (go-chi/httprate), in
// the service's JSON error shape.
//
// The client IP is whatever chi's middleware.ClientIPFrom* resolved upstream:
// state the trust model there. service1 is exposed directly, so it uses
// ClientIPFromRemoteAddr; behind a proxy, ClientIPFromXFF with the proxy's
// range instead (never a header any client can set).
package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"

	"github.com/failready/failready/internal/respond"
)

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
// called for each refused request with its scope.
func Middleware(l Limits, onLimited func(r *http.Request, scope string)) func(http.Handler) http.Handler {
	refuse := func(scope string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if onLimited != nil {
				onLimited(r, scope)
			}
			respond.Error(w, r, http.StatusTooManyRequests,
				fmt.Sprintf("rate limit exceeded (%s): retry after %s", scope, w.Header().Get("Retry-After")+"s"))
		}
	}
	perClient := httprate.LimitBy(l.PerClient, l.Window, func(r *http.Request) (string, error) {
		return httprate.CanonicalizeIP(middleware.GetClientIP(r.Context())), nil
	}, httprate.WithLimitHandler(refuse(ScopeClient)))
	// The global limiter sets its headers only when it refuses: on every
	// other response they would just overwrite the per-client ones (and cost
	// three header writes per request).
	global := httprate.LimitBy(l.Global, l.Window, httprate.Key("*"), httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", strconv.Itoa(int(l.Window.Seconds())))
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(l.Global))
		w.Header().Set("X-RateLimit-Remaining", "0")
		refuse(ScopeGlobal)(w, r)
	}), httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
	return func(next http.Handler) http.Handler {
		return perClient(global(next))
	}
}
