package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Experiment is one file of deploy/chaos: a steady state, a fault, what
// should hold while it lasts, and how to undo it.
type Experiment struct {
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	// SteadyState is checked before the fault (it must hold, or nothing is
	// injected) and after the rollbacks (it must come back within
	// Durations.Recover).
	SteadyState []Probe `yaml:"steady_state"`
	// Method injects the fault, step by step.
	Method []Action `yaml:"method"`
	// Hypothesis is what should hold while the fault is in: each probe
	// must hold by the end of Durations.Inject (or at every check of it,
	// with throughout).
	Hypothesis []Probe `yaml:"hypothesis"`
	// Rollbacks undo the method; they always run, whatever happened
	// (a disproved hypothesis, a timeout, Ctrl-C).
	Rollbacks []Action `yaml:"rollbacks"`
	Durations struct {
		// Inject: how long the fault stays in at most (scaled by -scale).
		Inject Duration `yaml:"inject"`
		// Recover: how long the steady state may take to come back after
		// the rollbacks (a bound, not a wait: not scaled).
		Recover Duration `yaml:"recover"`
	} `yaml:"durations"`

	Name string `yaml:"-"` // the file's name without .yaml
	File string `yaml:"-"`
}

// Probe measures one thing and says whether it is within its tolerance.
// Exactly one of SLO, Prometheus and HTTP is set.
type Probe struct {
	Name string `yaml:"name"`
	// Throughout, for a hypothesis probe: it must hold at every check
	// while the fault is in, not only once.
	Throughout bool `yaml:"throughout"`

	SLO        *SLOProbe        `yaml:"slo"`
	Prometheus *PrometheusProbe `yaml:"prometheus"`
	HTTP       *HTTPProbe       `yaml:"http"`
}

// SLOProbe is an SLI of deploy/slo (its error and total queries) over a
// short window: the share of bad events, at most Max (the SLO's error
// budget, 1 - objective, when unset).
type SLOProbe struct {
	Name   string   `yaml:"name"`
	Window Duration `yaml:"window"`
	Max    *float64 `yaml:"max"`
}

// PrometheusProbe is a PromQL query whose single value must be within
// [Min, Max] (each optional).
type PrometheusProbe struct {
	Query string   `yaml:"query"`
	Min   *float64 `yaml:"min"`
	Max   *float64 `yaml:"max"`
}

// HTTPProbe is one request: the status must be Status, the body must
// contain Body (when set), and the answer come within Within (when set).
type HTTPProbe struct {
	Method string   `yaml:"method"`
	URL    string   `yaml:"url"`
	Body   string   `yaml:"body"` // the request's body (JSON)
	Status int      `yaml:"status"`
	Expect string   `yaml:"expect"` // a substring of the answer's body
	Within Duration `yaml:"within"`
}

// Action is one step of a method or a rollback. Exactly one is set.
type Action struct {
	Name string `yaml:"name"`
	// Make runs a chaos target of the Makefile (make chaos-service2-down):
	// the same commands a reader types, on whichever stack runs.
	Make string `yaml:"make"`
	// Toxiproxy changes one proxy (or resets them all) through toxiproxy's
	// API, on any hop of deploy/toxiproxy/toxiproxy.json: service2, mysql,
	// nats, worker-nats.
	Toxiproxy *ToxiproxyAction `yaml:"toxiproxy"`
	// Wait pauses (scaled by -scale).
	Wait Duration `yaml:"wait"`
	// Load is a burst of make load's mix through service1 on top of the
	// steady load (a crowd signing up), for its duration (scaled).
	Load *LoadAction `yaml:"load"`
}

// LoadAction is a bounded burst: make load LOAD_RATE=rate LOAD_DURATION=duration.
type LoadAction struct {
	Rate     int      `yaml:"rate"`
	Duration Duration `yaml:"duration"`
}

// ToxiproxyAction disables a proxy, adds a toxic to it, or resets all.
type ToxiproxyAction struct {
	Proxy   string `yaml:"proxy"`
	Enabled *bool  `yaml:"enabled"`
	Toxic   *Toxic `yaml:"toxic"`
	Reset   bool   `yaml:"reset"`
}

// Toxic is a toxiproxy toxic, as its API takes it.
type Toxic struct {
	Name       string         `yaml:"name" json:"name"`
	Type       string         `yaml:"type" json:"type"`
	Stream     string         `yaml:"stream" json:"stream"`
	Toxicity   float64        `yaml:"toxicity" json:"toxicity"`
	Attributes map[string]int `yaml:"attributes" json:"attributes"`
}

// Duration is a time.Duration written as Go writes one ("30s", "1m30s").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (say 30s or 1m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) D() time.Duration { return time.Duration(d) }

// chaosTargets are the Makefile targets a make action may run.
var chaosTarget = regexp.MustCompile(`^chaos-[a-z0-9-]+$`)

// toxiproxy's toxic types and streams (its README).
var (
	toxicTypes   = []string{"latency", "down", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"}
	toxicStreams = []string{"upstream", "downstream"}
)

// proxyFile names toxiproxy's proxies, the same on both stacks.
const proxyFile = "deploy/toxiproxy/toxiproxy.json"

// proxyNames are its proxies (loadProxies fills them).
var proxyNames []string

func loadProxies(root string) error {
	b, err := os.ReadFile(filepath.Join(root, proxyFile))
	if err != nil {
		return err
	}
	var proxies []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &proxies); err != nil {
		return fmt.Errorf("%s: %w", proxyFile, err)
	}
	proxyNames = nil
	for _, p := range proxies {
		proxyNames = append(proxyNames, p.Name)
	}
	return nil
}

// Load reads and checks an experiment file; the error names the file, the
// field and why, before anything is injected.
func Load(path string) (*Experiment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e := &Experiment{File: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt field is an error, not a probe that checks nothing
	if err := dec.Decode(e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if errs := e.validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s:\n  %w", path, errors.Join(errs...))
	}
	return e, nil
}

// validate lists every problem of the experiment, each as "field: why".
func (e *Experiment) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if strings.TrimSpace(e.Title) == "" {
		bad("title", "missing")
	}
	if len(e.SteadyState) == 0 {
		bad("steady_state", "no probe: without a steady state there is nothing to disprove")
	}
	if len(e.Method) == 0 {
		bad("method", "no action: nothing would be injected")
	}
	if len(e.Hypothesis) == 0 {
		bad("hypothesis", "no probe: say what should hold while the fault is in")
	}
	if len(e.Rollbacks) == 0 {
		bad("rollbacks", "none: every experiment says how to undo what it does")
	}
	if e.Durations.Inject <= 0 {
		bad("durations.inject", "missing or zero: how long the fault stays in")
	}
	if e.Durations.Recover <= 0 {
		bad("durations.recover", "missing or zero: how long the steady state may take to return")
	}
	for i, p := range e.SteadyState {
		errs = append(errs, p.validate(fmt.Sprintf("steady_state[%d]", i))...)
		if p.Throughout {
			bad(fmt.Sprintf("steady_state[%d].throughout", i), "only for hypothesis probes")
		}
	}
	for i, p := range e.Hypothesis {
		errs = append(errs, p.validate(fmt.Sprintf("hypothesis[%d]", i))...)
	}
	for i, a := range e.Method {
		errs = append(errs, a.validate(fmt.Sprintf("method[%d]", i))...)
	}
	for i, a := range e.Rollbacks {
		errs = append(errs, a.validate(fmt.Sprintf("rollbacks[%d]", i))...)
		if a.Wait > 0 || a.Load != nil {
			bad(fmt.Sprintf("rollbacks[%d]", i), "a rollback undoes: no wait, no load (the steady-state check waits)")
		}
	}
	return errs
}

func (p Probe) validate(field string) []error {
	var errs []error
	bad := func(f, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", field, f, fmt.Sprintf(format, a...)))
	}
	if strings.TrimSpace(p.Name) == "" {
		bad(".name", "missing")
	}
	n := 0
	if p.SLO != nil {
		n++
		if _, ok := sloSpecs[p.SLO.Name]; !ok {
			bad(".slo.name", "%q is not an SLO of %s (%s)", p.SLO.Name, sloFile, strings.Join(sloNames(), ", "))
		}
		if w := p.SLO.Window.D(); w < 15*time.Second || w%time.Second != 0 {
			bad(".slo.window", "%v: at least 15s (three scrapes), in whole seconds", w)
		}
		if p.SLO.Max != nil && (*p.SLO.Max < 0 || *p.SLO.Max > 1) {
			bad(".slo.max", "%v is not a share between 0 and 1", *p.SLO.Max)
		}
	}
	if p.Prometheus != nil {
		n++
		if strings.TrimSpace(p.Prometheus.Query) == "" {
			bad(".prometheus.query", "missing")
		}
		if p.Prometheus.Min == nil && p.Prometheus.Max == nil {
			bad(".prometheus", "neither min nor max: a probe that cannot deviate")
		}
		if p.Prometheus.Min != nil && p.Prometheus.Max != nil && *p.Prometheus.Min > *p.Prometheus.Max {
			bad(".prometheus", "min %v is over max %v", *p.Prometheus.Min, *p.Prometheus.Max)
		}
	}
	if h := p.HTTP; h != nil {
		n++
		u, err := url.Parse(h.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad(".http.url", "%q is not an http URL", h.URL)
		case !loopback(u.Hostname()):
			bad(".http.url", "%q: experiments only call the stack on this machine (localhost, 127.0.0.1)", h.URL)
		}
		switch h.Method {
		case "", "GET", "HEAD", "POST", "PUT", "DELETE":
		default:
			bad(".http.method", "%q is not one of GET, HEAD, POST, PUT, DELETE", h.Method)
		}
		if h.Status < 100 || h.Status > 599 {
			bad(".http.status", "%d is not an HTTP status", h.Status)
		}
	}
	if n != 1 {
		bad("", "%d of slo, prometheus, http set; want exactly one", n)
	}
	return errs
}

func (a Action) validate(field string) []error {
	var errs []error
	bad := func(f, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", field, f, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(a.Name) == "" {
		bad(".name", "missing")
	}
	n := 0
	if a.Make != "" {
		n++
		if !chaosTarget.MatchString(a.Make) {
			bad(".make", "%q is not a chaos-* target of the Makefile", a.Make)
		}
	}
	if t := a.Toxiproxy; t != nil {
		n++
		switch {
		case t.Reset && (t.Proxy != "" || t.Enabled != nil || t.Toxic != nil):
			bad(".toxiproxy", "reset resets every proxy: no proxy, enabled or toxic with it")
		case t.Reset:
		case !slices.Contains(proxyNames, t.Proxy):
			bad(".toxiproxy.proxy", "%q is not a proxy of %s (%s)", t.Proxy, proxyFile, strings.Join(proxyNames, ", "))
		case (t.Enabled == nil) == (t.Toxic == nil):
			bad(".toxiproxy", "one of enabled and toxic")
		case t.Toxic != nil:
			if t.Toxic.Name == "" {
				bad(".toxiproxy.toxic.name", "missing")
			}
			if !slices.Contains(toxicTypes, t.Toxic.Type) {
				bad(".toxiproxy.toxic.type", "%q is not one of %s", t.Toxic.Type, strings.Join(toxicTypes, ", "))
			}
			if !slices.Contains(toxicStreams, t.Toxic.Stream) {
				bad(".toxiproxy.toxic.stream", "%q is not upstream or downstream", t.Toxic.Stream)
			}
			if t.Toxic.Toxicity < 0 || t.Toxic.Toxicity > 1 {
				bad(".toxiproxy.toxic.toxicity", "%v is not between 0 and 1", t.Toxic.Toxicity)
			}
		}
	}
	if a.Wait > 0 {
		n++
	}
	if l := a.Load; l != nil {
		n++
		if l.Rate <= 0 || l.Rate > 500 {
			bad(".load.rate", "%d: between 1 and 500 requests/s", l.Rate)
		}
		if l.Duration <= 0 || l.Duration.D() > 2*time.Minute {
			bad(".load.duration", "%v: up to 2m", l.Duration.D())
		}
	}
	if n != 1 {
		bad("", "%d of make, toxiproxy, wait, load set; want exactly one", n)
	}
	return errs
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// LoadDir reads every experiment of dir, in name order; it fails on the
// first invalid one.
func LoadDir(dir string) ([]*Experiment, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no experiment in %s", dir)
	}
	var out []*Experiment
	var errs []error
	for _, f := range files {
		e, err := Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}
