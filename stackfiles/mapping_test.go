package stackfiles

import (
	"slices"
	"testing"

	"github.com/prometheus/statsd_exporter/pkg/mapper"

	"github.com/failready/failready/internal/metrics"
)

const mappingFile = "deploy/statsd-exporter/mapping.yaml"

// loadMapping loads the mapping with statsd_exporter's own mapper, at the
// version the compose image and make e2e run.
func loadMapping(t *testing.T) *mapper.MetricMapper {
	t.Helper()
	m := &mapper.MetricMapper{}
	if err := m.InitFromFile(repoRoot + "/" + mappingFile); err != nil {
		t.Fatalf("%s: %v", mappingFile, err)
	}
	return m
}

func statsdType(t string) mapper.MetricType {
	switch t {
	case "ms":
		return mapper.MetricTypeObserver
	case "c":
		return mapper.MetricTypeCounter
	}
	return mapper.MetricTypeGauge
}

// TestMappingCoversTheCatalog: every metric the code sends is mapped to its
// catalog name, timers become histograms (never summaries) with buckets from
// sub-millisecond to 10 s, and an unknown name is dropped.
func TestMappingCoversTheCatalog(t *testing.T) {
	m := loadMapping(t)
	for _, c := range metrics.Catalog() {
		mp, _, ok := m.GetMapping(c.Statsd, statsdType(c.StatsdType))
		if !ok || mp.Action == mapper.ActionTypeDrop {
			t.Errorf("%s is not mapped", c.Statsd)
			continue
		}
		if mp.Name != c.Prometheus {
			t.Errorf("%s maps to %q, catalog says %q", c.Statsd, mp.Name, c.Prometheus)
		}
		if c.StatsdType == "ms" {
			if mp.ObserverType != mapper.ObserverTypeHistogram {
				t.Errorf("%s: observer %q, want histogram", c.Statsd, mp.ObserverType)
				continue
			}
			b := mp.HistogramOptions.Buckets
			if len(b) < 8 || b[0] > 0.001 || b[len(b)-1] < 10 || !slices.IsSorted(b) {
				t.Errorf("%s: buckets %v must span under 1ms to 10s", c.Statsd, b)
			}
		}
	}
	if mp, _, ok := m.GetMapping("http.server.request.durration", mapper.MetricTypeObserver); ok && mp.Action != mapper.ActionTypeDrop {
		t.Errorf("an unknown metric is not dropped: %+v", mp)
	}
}
