// Package lokitest stands at Loki's door in a test: a lokidoor.Server (Loki's
// push and query API, Loki's OTLP mapping) on a loopback port, stopped when
// the test ends. Loki itself is AGPL and never runs here.
//
// Depends on: devstack/lokidoor; for tests (it imports testing).
package lokitest

import (
	"testing"

	"github.com/failready/failready/devstack/lokidoor"
)

// LokiPath is where Loki takes OTLP logs over HTTP (the collector's
// otlphttp exporter with endpoint http://loki:3100/otlp appends /v1/logs).
const LokiPath = lokidoor.PushPath

// Record is one received log record, flattened.
type Record = lokidoor.Record

// LogsReceiver stands at Loki's door: a lokidoor.Server (Loki's push and
// query API, Loki's OTLP mapping) on a loopback port for a test. Loki
// itself is AGPL and never runs here.
type LogsReceiver struct{ *lokidoor.Server }

// ListenLogs starts a receiver on a free loopback port, stopped when the
// test ends.
func ListenLogs(t testing.TB) *LogsReceiver { t.Helper(); return ListenLogsAt(t, "127.0.0.1:0") }

// ListenLogsAt starts a receiver on addr (to bring it back where an exporter
// already points). Its query API indexes no label: map its Records with
// Record.Loki and the index labels of Loki's config (lokidoor.IndexLabels).
func ListenLogsAt(t testing.TB, addr string) *LogsReceiver {
	t.Helper()
	s, err := lokidoor.Listen(addr, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &LogsReceiver{s}
}
