package health_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"

	"github.com/failready/failready/internal/health"
)

// Readiness follows a dependency and a gate the process closes when it
// starts to shut down; liveness checks nothing.
func ExampleReady() {
	var gate health.Gate
	db := func(context.Context) error { return nil } // a bounded ping in a service
	ready := health.Ready(health.All(gate.Check, db), "not ready", slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	probe := func() string {
		rec := httptest.NewRecorder()
		ready.ServeHTTP(rec, httptest.NewRequest("GET", health.ReadyPath, nil))
		return fmt.Sprint(rec.Code)
	}
	fmt.Println("serving:", probe())
	gate.Close() // SIGTERM: traffic moves away while in-flight requests finish
	fmt.Println("draining:", probe())
	rec := httptest.NewRecorder()
	health.Live().ServeHTTP(rec, httptest.NewRequest("GET", health.LivePath, nil))
	fmt.Println("live:", rec.Code)
	// Output:
	// serving: 200
	// draining: 503
	// live: 200
}
