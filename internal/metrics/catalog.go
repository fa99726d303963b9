package metrics

// The names the code sends (DogStatsD, dot-separated). deploy/statsd-exporter/mapping.yaml
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
	ServerRateLimited     = "http.server.rate_limited"
	ServerShed            = "http.server.shed"
	ClientRetries         = "http.client.retries"
	ClientRetriesDenied   = "http.client.retries_denied"
	BreakerState          = "circuit.breaker.state"
	BreakerTransitions    = "circuit.breaker.transitions"

	// The worker tier: the talk's worker metrics (task latency, errors,
	// queue size) and the outbox that feeds the queue.
	TaskDuration          = "task.duration"
	TaskEndToEnd          = "task.end_to_end"
	TaskErrors            = "task.errors"
	TaskRedeliveries      = "task.redeliveries"
	TaskDeadLettered      = "task.dead_lettered"
	TaskInProgress        = "task.in_progress"
	QueuePending          = "queue.pending"
	QueueAckPending       = "queue.ack_pending"
	OutboxBacklog         = "outbox.backlog"
	OutboxOldestAge       = "outbox.oldest_age"
	OutboxPublished       = "outbox.published"
	OutboxPublishFailures = "outbox.publish_failures"
)

// Metric describes one metric as Prometheus sees it after mapping.
type Metric struct {
	Statsd     string   // the name sent
	Prometheus string   // the name after statsd-exporter's mapping
	Type       string   // histogram, counter or gauge, in Prometheus
	StatsdType string   // ms (timer), c (count) or g (gauge), on the wire
	Labels     []string // every label, always all present
	Help       string
	// Event marks a metric sent only when its event happens (a rate-limited
	// request, a denied retry): a healthy run may have no series of it.
	Event bool
}

// Catalog returns every metric the services send.
func Catalog() []Metric {
	return []Metric{
		{Statsd: ServerRequestDuration, Prometheus: "http_server_request_duration_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service", "method", "route", "status"},
			Help:   "Duration of HTTP requests served, health probes excluded; its _count is the request count."},
		{Statsd: ServerActiveRequests, Prometheus: "http_server_active_requests", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "HTTP requests being served now (sampled every report interval)."},
		{Statsd: ServerPanics, Prometheus: "http_server_panics_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "route"},
			Help:   "Panics recovered into a 500."},
		{Statsd: ClientRequestDuration, Prometheus: "http_client_request_duration_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service", "peer", "method", "route", "outcome", "status"},
			Help:   "Duration of each attempt of a call to another service; outcome is ok, error, timeout or rejected (circuit open); status is the answer's code, or none."},
		{Statsd: DBQueryDuration, Prometheus: "db_query_duration_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service", "operation", "outcome"},
			Help:   "Duration of database statements; outcome is ok, error or timeout."},
		{Statsd: DBQueryErrors, Prometheus: "db_query_errors_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "operation"},
			Help:   "Database statements that failed (not found is not a failure)."},
		{Statsd: DBPoolOpen, Prometheus: "db_pool_open_connections", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Connections open, in use or idle."},
		{Statsd: DBPoolInUse, Prometheus: "db_pool_in_use_connections", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Connections in use."},
		{Statsd: DBPoolIdle, Prometheus: "db_pool_idle_connections", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Idle connections."},
		{Statsd: DBPoolMaxOpen, Prometheus: "db_pool_max_open_connections", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "The pool's limit (DB_MAX_OPEN_CONNS)."},
		{Statsd: DBPoolWaits, Prometheus: "db_pool_waits_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service"},
			Help:   "Times a query waited for a free connection."},
		{Statsd: DBPoolWaitDuration, Prometheus: "db_pool_wait_duration_seconds_total", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Total time spent waiting for a free connection since start (cumulative: use rate())."},
		{Statsd: RuntimeGoroutines, Prometheus: "go_runtime_goroutines", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Goroutines."},
		{Statsd: RuntimeHeapAlloc, Prometheus: "go_runtime_heap_alloc_bytes", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Bytes of allocated heap objects."},
		{Statsd: RuntimeGCPause, Prometheus: "go_runtime_gc_pause_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service"},
			Help:   "Stop-the-world GC pauses."},
		{Statsd: BuildInfo, Prometheus: "failready_build_info", Type: "gauge", StatsdType: "g",
			Labels: []string{"service", "version", "go_version"},
			Help:   "Always 1; the labels say which build runs."},
		{Statsd: ServerRateLimited, Prometheus: "http_server_rate_limited_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "scope"},
			Help:   "Requests refused with 429; scope is client (per client IP) or global.", Event: true},
		{Statsd: ServerShed, Prometheus: "http_server_shed_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service"},
			Help:   "Requests refused with 503 because too many were in flight.", Event: true},
		{Statsd: ClientRetries, Prometheus: "http_client_retries_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "peer", "route"},
			Help:   "Retries of calls to another service."},
		{Statsd: ClientRetriesDenied, Prometheus: "http_client_retries_denied_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "peer", "reason"},
			Help:   "Retries not made; reason is budget (the retry budget is spent) or deadline (no time left).", Event: true},
		{Statsd: BreakerState, Prometheus: "circuit_breaker_state", Type: "gauge", StatsdType: "g",
			Labels: []string{"service", "peer"},
			Help:   "The circuit breaker's state: 0 closed, 1 half-open, 2 open."},
		{Statsd: BreakerTransitions, Prometheus: "circuit_breaker_transitions_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "peer", "to"},
			Help:   "Circuit breaker state changes, by the state entered."},
		{Statsd: TaskDuration, Prometheus: "worker_task_duration_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service", "task", "outcome"},
			Help:   "Time to handle one delivery of a task; outcome is ack, retry, dead_letter or give_back."},
		{Statsd: TaskEndToEnd, Prometheus: "worker_task_end_to_end_seconds", Type: "histogram", StatsdType: "ms",
			Labels: []string{"service", "task"},
			Help:   "From the task's recording (the user's creation) to its work done: outbox, queue, retries and the work."},
		{Statsd: TaskErrors, Prometheus: "worker_task_errors_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "task", "kind"},
			Help:   "Deliveries that failed; kind is poison (never retried) or transient (retried).", Event: true},
		{Statsd: TaskRedeliveries, Prometheus: "worker_task_redeliveries_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "task"},
			Help:   "Deliveries after the first (a retry, a lost ack, a worker that died).", Event: true},
		{Statsd: TaskDeadLettered, Prometheus: "worker_tasks_dead_lettered_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service", "task", "reason"},
			Help:   "Tasks put in the dead-letter stream; reason is poison or exhausted (out of deliveries).", Event: true},
		{Statsd: TaskInProgress, Prometheus: "worker_tasks_in_progress", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Tasks being handled now (sampled every report interval)."},
		{Statsd: QueuePending, Prometheus: "worker_queue_pending_tasks", Type: "gauge", StatsdType: "g",
			Labels: []string{"service", "consumer"},
			Help:   "Tasks in the stream not yet delivered to the consumer: the queue size (sampled)."},
		{Statsd: QueueAckPending, Prometheus: "worker_queue_ack_pending_tasks", Type: "gauge", StatsdType: "g",
			Labels: []string{"service", "consumer"},
			Help:   "Tasks delivered and not yet acknowledged (sampled)."},
		{Statsd: OutboxBacklog, Prometheus: "outbox_backlog_tasks", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Outbox rows not yet published (sampled every report interval)."},
		{Statsd: OutboxOldestAge, Prometheus: "outbox_oldest_age_seconds", Type: "gauge", StatsdType: "g",
			Labels: []string{"service"},
			Help:   "Age of the oldest outbox row not yet published; 0 when none."},
		{Statsd: OutboxPublished, Prometheus: "outbox_published_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service"},
			Help:   "Outbox rows published to the broker."},
		{Statsd: OutboxPublishFailures, Prometheus: "outbox_publish_failures_total", Type: "counter", StatsdType: "c",
			Labels: []string{"service"},
			Help:   "Relay passes stopped by a failed publish (the rows wait).", Event: true},
	}
}
