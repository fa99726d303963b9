package metrics

// The names the code sends (DogStatsD, dot-separated). statsd-exporter/mapping.yaml
// maps each to its Prometheus name; Catalog lists them all, and the tests
// check that the mapping, the README's catalog table and the Grafana panels
// agree with it.
const (
	ServerRequestDuration = "http.server.request.duration"
	ServerActiveRequests  = "http.server.active_requests"
	ServerPanics          = "http.server.panics"
	ClientRequestDuration = "http.client.request.duration"
	DBQueryDuration       = "db.query.duration"
	DBQueryErrors         = "db.query.errors"
	DBPoolOpen            = "db.pool.open"
	DBPoolInUse           = "db.pool.in_use"
	DBPoolIdle            = "db.pool.idle"
	DBPoolMaxOpen         = "db.pool.max_open"
	DBPoolWaits           = "db.pool.waits"
	DBPoolWaitDuration    = "db.pool.wait_duration"
	RuntimeGoroutines     = "go.runtime.goroutines"
	RuntimeHeapAlloc      = "go.runtime.heap_alloc"
	RuntimeGCPause        = "go.runtime.gc_pause"
	BuildInfo             = "build.info"
)

// Metric describes one metric as Prometheus sees it after mapping.
type Metric struct {
	Statsd     string   // the name sent
	Prometheus string   // the name after statsd-exporter's mapping
	Type       string   // histogram, counter or gauge, in Prometheus
	StatsdType string   // ms (timer), c (count) or g (gauge), on the wire
	Labels     []string // every label, always all present
	Help       string
}

// Catalog returns every metric the services send.
func Catalog() []Metric {
	return []Metric{
		{ServerRequestDuration, "http_server_request_duration_seconds", "histogram", "ms",
			[]string{"service", "method", "route", "status"},
			"Duration of HTTP requests served, health probes excluded; its _count is the request count."},
		{ServerActiveRequests, "http_server_active_requests", "gauge", "g",
			[]string{"service"}, "HTTP requests being served now (sampled every report interval)."},
		{ServerPanics, "http_server_panics_total", "counter", "c",
			[]string{"service", "route"}, "Panics recovered into a 500."},
		{ClientRequestDuration, "http_client_request_duration_seconds", "histogram", "ms",
			[]string{"service", "peer", "method", "route", "outcome", "status"},
			"Duration of calls to another service; outcome is ok, error or timeout; status is the answer's code, or none."},
		{DBQueryDuration, "db_query_duration_seconds", "histogram", "ms",
			[]string{"service", "operation", "outcome"}, "Duration of database statements; outcome is ok, error or timeout."},
		{DBQueryErrors, "db_query_errors_total", "counter", "c",
			[]string{"service", "operation"}, "Database statements that failed (not found is not a failure)."},
		{DBPoolOpen, "db_pool_open_connections", "gauge", "g", []string{"service"}, "Connections open, in use or idle."},
		{DBPoolInUse, "db_pool_in_use_connections", "gauge", "g", []string{"service"}, "Connections in use."},
		{DBPoolIdle, "db_pool_idle_connections", "gauge", "g", []string{"service"}, "Idle connections."},
		{DBPoolMaxOpen, "db_pool_max_open_connections", "gauge", "g", []string{"service"}, "The pool's limit (DB_MAX_OPEN_CONNS)."},
		{DBPoolWaits, "db_pool_waits_total", "counter", "c", []string{"service"}, "Times a query waited for a free connection."},
		{DBPoolWaitDuration, "db_pool_wait_duration_seconds_total", "gauge", "g", []string{"service"},
			"Total time spent waiting for a free connection since start (cumulative: use rate())."},
		{RuntimeGoroutines, "go_runtime_goroutines", "gauge", "g", []string{"service"}, "Goroutines."},
		{RuntimeHeapAlloc, "go_runtime_heap_alloc_bytes", "gauge", "g", []string{"service"}, "Bytes of allocated heap objects."},
		{RuntimeGCPause, "go_runtime_gc_pause_seconds", "histogram", "ms", []string{"service"}, "Stop-the-world GC pauses."},
		{BuildInfo, "failready_build_info", "gauge", "g", []string{"service", "version", "go_version"},
			"Always 1; the labels say which build runs."},
	}
}
