package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/devstack/promapi"
)

// sloFile holds the SLOs whose SLIs the slo probes measure.
const sloFile = "deploy/slo/failready.yaml"

// sloSpec is one SLO of sloFile, as Sloth reads it.
type sloSpec struct {
	Objective  float64
	ErrorQuery string
	TotalQuery string
}

// sloSpecs are the SLOs by name (loadSLOs fills them).
var sloSpecs = map[string]sloSpec{}

// loadSLOs reads the SLO specs of the repository at root.
func loadSLOs(root string) error {
	b, err := os.ReadFile(root + "/" + sloFile)
	if err != nil {
		return err
	}
	var f struct {
		SLOs []struct {
			Name      string  `yaml:"name"`
			Objective float64 `yaml:"objective"`
			SLI       struct {
				Events struct {
					ErrorQuery string `yaml:"error_query"`
					TotalQuery string `yaml:"total_query"`
				} `yaml:"events"`
			} `yaml:"sli"`
		} `yaml:"slos"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", sloFile, err)
	}
	for _, s := range f.SLOs {
		if s.SLI.Events.ErrorQuery == "" || s.SLI.Events.TotalQuery == "" || s.Objective <= 0 {
			return fmt.Errorf("%s: SLO %s has no events SLI or no objective", sloFile, s.Name)
		}
		sloSpecs[s.Name] = sloSpec{s.Objective, s.SLI.Events.ErrorQuery, s.SLI.Events.TotalQuery}
	}
	return nil
}

func sloNames() []string {
	var names []string
	for n := range sloSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// query is the PromQL of an slo probe: the SLO's error share over its
// window, as Sloth's recording rules compute it over theirs.
func (p *SLOProbe) query() string {
	s := sloSpecs[p.Name]
	w := model(p.Window.D())
	return "(" + strings.ReplaceAll(s.ErrorQuery, "{{.window}}", w) + ") / (" + strings.ReplaceAll(s.TotalQuery, "{{.window}}", w) + ")"
}

// max is the share of errors the probe tolerates: the SLO's error budget
// unless the file says otherwise.
func (p *SLOProbe) max() float64 {
	if p.Max != nil {
		return *p.Max
	}
	return 1 - sloSpecs[p.Name].Objective/100
}

// model writes d as PromQL writes a range: whole seconds.
func model(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// Reading is one measurement of a probe.
type Reading struct {
	At    time.Time `json:"at"`
	Value string    `json:"value"`            // as a person reads it: "0.0031", "503 in 4ms", "no data"
	Num   *float64  `json:"number,omitempty"` // the number, when there is one
	Held  bool      `json:"held"`             // within the tolerance
	Error string    `json:"error,omitempty"`  // why there is no value
}

// prober measures probes against the stack.
type prober struct {
	prometheus string // base URL
	client     *http.Client
}

func (pr *prober) measure(ctx context.Context, p Probe) Reading {
	r := Reading{At: time.Now().UTC()}
	switch {
	case p.SLO != nil:
		v, err := pr.promValue(ctx, p.SLO.query())
		r.set(v, err, nil, ptr(p.SLO.max()))
	case p.Prometheus != nil:
		v, err := pr.promValue(ctx, p.Prometheus.Query)
		r.set(v, err, p.Prometheus.Min, p.Prometheus.Max)
	case p.HTTP != nil:
		pr.call(ctx, p.HTTP, &r)
	}
	return r
}

func ptr(f float64) *float64 { return &f }

// set records a number and whether it is within [min, max].
func (r *Reading) set(v float64, err error, lo, hi *float64) {
	if err != nil {
		r.Value, r.Error = "no data", err.Error()
		return
	}
	r.Num = &v
	r.Value = strconv.FormatFloat(v, 'g', 4, 64)
	r.Held = (lo == nil || v >= *lo) && (hi == nil || v <= *hi)
}

// promValue runs an instant query that must give one number; NaN (no
// events in the window) is no reading.
func (pr *prober) promValue(ctx context.Context, q string) (float64, error) {
	v, err := promapi.Value(ctx, pr.client, pr.prometheus, q)
	if errors.Is(err, promapi.ErrNotOne) {
		return 0, fmt.Errorf("%w: the probe wants one number (aggregate with sum or max)", err)
	}
	if err == nil && math.IsNaN(v) {
		return 0, fmt.Errorf("NaN (no events in the window)")
	}
	return v, err
}

// call makes the request of an http probe.
func (pr *prober) call(ctx context.Context, h *HTTPProbe, r *Reading) {
	method := h.Method
	if method == "" {
		method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.URL, body)
	if err != nil {
		r.Value, r.Error = "no answer", err.Error()
		return
	}
	if h.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := pr.client.Do(req)
	if err != nil {
		r.Value, r.Error = "no answer", err.Error()
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	took := time.Since(start)
	ms := float64(took.Microseconds()) / 1000
	r.Num = &ms
	r.Value = fmt.Sprintf("%d in %s", resp.StatusCode, took.Round(100*time.Microsecond))
	r.Held = resp.StatusCode == h.Status && (h.Within == 0 || took <= h.Within.D())
	if h.Expect != "" && !strings.Contains(string(b), h.Expect) {
		r.Held = false
		r.Value += fmt.Sprintf(", body without %q", h.Expect)
	}
}

// tolerance says what a probe accepts, for the verdict.
func (p Probe) tolerance() string {
	bound := func(lo, hi *float64) string {
		switch {
		case lo != nil && hi != nil && *lo == *hi:
			return fmt.Sprintf("= %g", *lo)
		case lo != nil && hi != nil:
			return fmt.Sprintf("in [%g, %g]", *lo, *hi)
		case lo != nil:
			return fmt.Sprintf("≥ %g", *lo)
		default:
			return fmt.Sprintf("≤ %g", *hi)
		}
	}
	switch {
	case p.SLO != nil:
		return fmt.Sprintf("%s error share over %s ≤ %.6g", p.SLO.Name, model(p.SLO.Window.D()), p.SLO.max())
	case p.Prometheus != nil:
		return bound(p.Prometheus.Min, p.Prometheus.Max)
	default:
		s := strconv.Itoa(p.HTTP.Status)
		if p.HTTP.Within > 0 {
			s += " within " + p.HTTP.Within.D().String()
		}
		if p.HTTP.Expect != "" {
			s += fmt.Sprintf(" with %q", p.HTTP.Expect)
		}
		return s
	}
}
