//go:build !race

// The race detector changes what allocates (sync.Pool drops items at
// random), so make bench-check runs this file, in the race-free build it
// counts instructions with.

package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/failready/failready/internal/health"
)

// allocBudget is how many heap allocations per request the full middleware
// stack may add to otelhttp alone (31 when it was set; BENCHMARKS.md). An
// allocation count, unlike a time, does not depend on the machine, so this
// guard can run in every CI run: a change that adds allocations to every
// request must raise it on purpose.
const allocBudget = 32

func TestAllocationBudget(t *testing.T) {
	allocs := func(h http.Handler) float64 {
		req := httptest.NewRequest("GET", "/users/1", nil)
		req.RemoteAddr = "10.1.2.3:4567"
		serve := func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
		}
		serve() // warm the caches (tags, pools)
		return testing.AllocsPerRun(200, serve)
	}
	tr, logger, m, mp, cfg := benchDeps(t)
	r := chi.NewRouter()
	r.Method("GET", "/users/{id}", handlerUnderTest())
	base := allocs(otelhttp.NewHandler(r, "server", otelhttp.WithTracerProvider(tr.Provider), otelhttp.WithPropagators(tr.Propagator)))
	full := allocs(newServer(logger, m, tr, mp, stubService2{}, cfg, &health.Gate{}))
	t.Logf("allocations per request: otelhttp alone %.0f, full stack %.0f (+%.0f; budget +%d)", base, full, full-base, allocBudget)
	if full-base > allocBudget {
		t.Errorf("the full stack adds %.0f allocations per request to otelhttp's %.0f; the budget is %d", full-base, base, allocBudget)
	}
}
