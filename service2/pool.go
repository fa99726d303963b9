package main

import (
	"database/sql"

	"github.com/failready/failready/internal/metrics"
)

// poolCollector samples the connection pool every report interval: open,
// in use, idle and the limit as gauges (in use near the limit means
// saturation), the waits since the last sample as a counter, and the total
// wait time as a cumulative gauge.
func poolCollector(db *sql.DB) metrics.Collector {
	var lastWaits int64
	return func(m *metrics.Client) {
		st := db.Stats()
		m.Gauge(metrics.DBPoolOpen, float64(st.OpenConnections), nil)
		m.Gauge(metrics.DBPoolInUse, float64(st.InUse), nil)
		m.Gauge(metrics.DBPoolIdle, float64(st.Idle), nil)
		m.Gauge(metrics.DBPoolMaxOpen, float64(st.MaxOpenConnections), nil)
		m.Count(metrics.DBPoolWaits, st.WaitCount-lastWaits, nil)
		m.Gauge(metrics.DBPoolWaitDuration, st.WaitDuration.Seconds(), nil)
		lastWaits = st.WaitCount
	}
}
