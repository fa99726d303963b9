//go:build integration

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/internal/health"
	"github.com/failready/failready/internal/metrics"
	"github.com/failready/failready/internal/tracing"
)

// TestDBSpans: a request to service2 against real MySQL gives the server
// span, the talk's service2-db span, and otelsql's statement span with the
// db semantic conventions, in one tree.
func TestDBSpans(t *testing.T) {
	d := testDatabase(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())
	tr := tracing.Tracing{Provider: tp, Propagator: tracing.Propagator()}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	c := appConfig(d)
	db, err := mysqldb.Open(c, logger, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := metrics.New(metrics.Options{})
	defer m.Close()
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(logger, m, tr, noop.NewMeterProvider(), newStore(db, c.QueryTimeout, logger, m, tr), cfg, &health.Gate{}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/users/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var root, dbSpan, stmt sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch {
		case s.Name() == "GET /users/{id}":
			root = s
		case s.Name() == "service2-db":
			dbSpan = s
		}
	}
	for _, s := range sr.Ended() { // the statement: a child of service2-db with the query
		if dbSpan != nil && s.Parent().SpanID() == dbSpan.SpanContext().SpanID() {
			for _, a := range s.Attributes() {
				if a.Key == "db.query.text" {
					stmt = s
				}
			}
		}
	}
	if root == nil || dbSpan == nil || stmt == nil {
		t.Fatalf("spans: %v", sr.Ended())
	}
	if dbSpan.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Error("service2-db is not a child of the server span")
	}
	attrs := map[string]string{}
	for _, a := range stmt.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if stmt.Name() != "sql.conn.query" || attrs["db.system.name"] != "mysql" || !strings.Contains(attrs["db.query.text"], "WHERE id = ?") || attrs["db.namespace"] != d.Name {
		t.Errorf("statement span %s: %v", stmt.Name(), attrs)
	}
}
