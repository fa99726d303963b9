package metrics

import (
	"runtime"
	"time"
)

// runtimeCollector samples goroutines, the heap and the GC pauses since the
// last sample. ReadMemStats stops the world for a few microseconds, which is
// why it runs every report interval and not per request.
func runtimeCollector() Collector {
	var lastGC uint32
	return func(c *Client) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.Gauge(RuntimeGoroutines, float64(runtime.NumGoroutine()), nil)
		c.Gauge(RuntimeHeapAlloc, float64(ms.HeapAlloc), nil)
		// PauseNs is a ring of the last 256 pauses; send the new ones.
		n := ms.NumGC - lastGC
		if lastGC == 0 || n > 256 {
			n = min(ms.NumGC, 256)
		}
		for i := uint32(0); i < n; i++ {
			gc := ms.NumGC - i
			c.Timing(RuntimeGCPause, time.Duration(ms.PauseNs[(gc+255)%256]), nil)
		}
		lastGC = ms.NumGC
	}
}

// buildInfoCollector sends build_info 1 with the version and Go version, so
// a dashboard can show which build runs and join it to other series.
func buildInfoCollector(version string) Collector {
	tags := []string{"version:" + version, "go_version:" + runtime.Version()}
	return func(c *Client) { c.Gauge(BuildInfo, 1, tags) }
}
