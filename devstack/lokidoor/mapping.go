package lokidoor

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Entry is a log record as Loki 3 stores what it takes over OTLP: the
// index labels that name its stream, the structured metadata beside the
// line, and the line (the body).
type Entry struct {
	Labels   map[string]string
	Metadata map[string]string
	Line     string
	Time     time.Time
}

// Loki maps the record as Loki's OTLP ingestion does, given the resource
// attributes its config indexes (IndexLabels): those become the stream's
// labels; the other resource attributes, the record's attributes, its trace
// and span IDs and its severity become structured metadata; every name has
// its dots (and anything else a label name may not hold) turned into
// underscores, so service.name is service_name in LogQL.
func (r Record) Loki(indexed []string) Entry {
	e := Entry{Labels: map[string]string{}, Metadata: map[string]string{}, Line: r.Body, Time: r.Time}
	for k, v := range r.Resource {
		if slices.Contains(indexed, k) {
			e.Labels[Name(k)] = v
		} else {
			e.Metadata[Name(k)] = v
		}
	}
	for k, v := range r.Attrs {
		e.Metadata[Name(k)] = v
	}
	for k, v := range map[string]string{"trace_id": r.TraceID, "span_id": r.SpanID, "severity_text": r.SeverityText} {
		if v != "" {
			e.Metadata[k] = v
		}
	}
	if r.SeverityNumber != 0 {
		e.Metadata["severity_number"] = strconv.Itoa(int(r.SeverityNumber))
	}
	if !r.Observed.IsZero() && r.Observed.UnixNano() != 0 {
		e.Metadata["observed_timestamp"] = strconv.FormatInt(r.Observed.UnixNano(), 10)
	}
	// A record whose resource has no service.name is still labelled:
	// Loki's service-name discovery (on by default, as in this project's
	// config) names its stream unknown_service.
	if _, ok := e.Labels[ServiceNameLabel]; !ok {
		e.Labels[ServiceNameLabel] = UnknownService
	}
	return e
}

// ServiceNameLabel is service.name's label, and UnknownService the value
// Loki gives it when a record's resource has none.
const (
	ServiceNameLabel = "service_name"
	UnknownService   = "unknown_service"
)

var notLabelChar = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// Name is an OTLP attribute's name as Loki stores it.
func Name(attr string) string { return notLabelChar.ReplaceAllString(attr, "_") }

// IndexLabels reads the resource attributes a Loki config indexes, from
// its limits_config.otlp_config. Only a config that sets ignore_defaults is
// understood: Loki's long default list is exactly what this project turns
// off.
func IndexLabels(config []byte) ([]string, error) {
	var c struct {
		Limits struct {
			OTLP struct {
				Resource struct {
					IgnoreDefaults bool `yaml:"ignore_defaults"`
					Attributes     []struct {
						Action     string   `yaml:"action"`
						Attributes []string `yaml:"attributes"`
						Regex      string   `yaml:"regex"`
					} `yaml:"attributes_config"`
				} `yaml:"resource_attributes"`
			} `yaml:"otlp_config"`
		} `yaml:"limits_config"`
	}
	if err := yaml.Unmarshal(config, &c); err != nil {
		return nil, err
	}
	res := c.Limits.OTLP.Resource
	if !res.IgnoreDefaults {
		return nil, errors.New("limits_config.otlp_config.resource_attributes.ignore_defaults is not true: Loki's default index labels apply")
	}
	var out []string
	for _, a := range res.Attributes {
		if a.Regex != "" {
			return nil, fmt.Errorf("attributes_config by regex %q: not modelled here; list the attributes", a.Regex)
		}
		if a.Action == "index_label" {
			out = append(out, a.Attributes...)
		}
	}
	return out, nil
}

var (
	logqlStrings   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")
	logqlSelectors = regexp.MustCompile(`\{([^}]*)\}`)
	logqlMatcher   = regexp.MustCompile(`([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)`)
	logqlFilter    = regexp.MustCompile(`(?:\||\band\b|\bor\b|,)\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|==|>=|<=|=|>|<)`)
	logqlGrouping  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	logqlUnwrap    = regexp.MustCompile(`\bunwrap\s+(?:\w+\()?([A-Za-z_]\w*)`)
)

// LogQLNames lists the label and structured-metadata names a LogQL query
// reads: its stream selectors' matchers, its label filters, unwrap and the
// by/without of its aggregations (Loki's own __error__ and the like left
// out). A small scanner for the queries this project writes, not a parser.
func LogQLNames(query string) []string {
	q := logqlStrings.ReplaceAllString(query, `""`)
	var names []string
	add := func(n string) {
		if n = strings.TrimSpace(n); n != "" && !strings.HasPrefix(n, "__") && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, sel := range logqlSelectors.FindAllStringSubmatch(q, -1) {
		for _, m := range logqlMatcher.FindAllStringSubmatch(sel[1], -1) {
			add(m[1])
		}
	}
	rest := logqlSelectors.ReplaceAllString(q, "{}")
	for _, m := range logqlFilter.FindAllStringSubmatch(rest, -1) {
		add(m[1])
	}
	for _, m := range logqlUnwrap.FindAllStringSubmatch(rest, -1) {
		add(m[1])
	}
	for _, m := range logqlGrouping.FindAllStringSubmatch(rest, -1) {
		for _, n := range strings.Split(m[1], ",") {
			add(n)
		}
	}
	slices.Sort(names)
	return names
}
