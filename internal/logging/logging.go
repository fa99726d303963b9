// Package logging builds the JSON logger every process uses: one object per
// line on stdout, with the fields that correlate a line with its service,
// build, deployment and request.
//
// Pass the *slog.Logger explicitly and log with the ...Context methods
// (InfoContext, ErrorContext) while serving a request: the handler takes the
// request ID from the context, so every line of that request can be found with
// one grep, whichever package wrote it.
//
// Depends on: internal/requestid (the ID in every line), internal/httplabel (the
// route in access lines), go.opentelemetry.io/otel/trace (trace_id and
// span_id), github.com/go-chi/chi/v5/middleware (the response recorder).
//
// Tests use: github.com/go-chi/chi/v5, internal/logging/logtest.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/failready/failready/internal/requestid"
)

// Options names the process in every line.
type Options struct {
	Service      string
	Version      string
	DeploymentID string
	Level        slog.Leveler
}

// New returns a JSON logger writing to w.
func New(w io.Writer, o Options) *slog.Logger {
	level := o.Level
	if level == nil {
		level = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(contextHandler{h}).With(
		slog.String("service", o.Service),
		slog.String("version", o.Version),
		slog.String("deployment_id", o.DeploymentID),
	)
}

// ParseLevel accepts debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
	}
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return l, nil
	}
	return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
}

// contextHandler adds the request's correlation fields from the context:
// request_id, and trace_id and span_id of the current span, so that a log
// line leads to its trace and a trace to its log lines; and it escapes the
// characters a reader of the log could not see (printable.go).
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	r = printableRecord(r) // no invisible characters in a log line
	// Collected first and added in one call: each AddAttrs may grow the
	// record's slice, an allocation every time on a line with many fields.
	var attrs [3]slog.Attr
	n := 0
	if id := requestid.FromContext(ctx); id != "" {
		attrs[n] = slog.String("request_id", id)
		n++
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs[n] = slog.String("trace_id", sc.TraceID().String())
		attrs[n+1] = slog.String("span_id", sc.SpanID().String())
		n += 2
	}
	r.AddAttrs(attrs[:n]...)
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// Fatal writes the one JSON line a process prints when run fails (a bad
// setting, a port in use), so that even that line is machine-readable.
func Fatal(w io.Writer, service, version string, err error) {
	slog.New(slog.NewJSONHandler(w, nil)).Error("exiting",
		"service", service, "version", version, "error", err.Error())
}
