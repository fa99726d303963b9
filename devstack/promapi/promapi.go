// Package promapi reads Prometheus's HTTP API the way this repository's
// tooling does (cmd/chaos's probes, the e2e tests): an instant query, its
// single number, the series of a name, a selector's exemplars. It is tooling, not a pattern.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Result is an instant query's answer.
type Result struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

// ErrNotOne is Value's error for a vector of no series or of several: the
// query does not give one number (aggregate with sum or max).
var ErrNotOne = errors.New("not one series")

// maxBody bounds what is read of an answer.
const maxBody = 8 << 20

// Query runs an instant query at base (http://host:port) and returns its
// answer; an answer whose status is not success is an error.
func Query(ctx context.Context, c *http.Client, base, expr string) (Result, error) {
	var r Result
	if err := get(ctx, c, base+"/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
		return r, fmt.Errorf("prometheus: %s: %w", expr, err)
	}
	if r.Status != "success" {
		return r, fmt.Errorf("prometheus: %s: %s %s", expr, r.Status, r.Error)
	}
	return r, nil
}

// Value runs a query that must give one number: a scalar, or a vector of
// one series (ErrNotOne otherwise). NaN is a number here: whether it means
// "no events in the window" is the caller's to say.
func Value(ctx context.Context, c *http.Client, base, expr string) (float64, error) {
	r, err := Query(ctx, c, base, expr)
	if err != nil {
		return 0, err
	}
	var sample []json.RawMessage
	switch r.Data.ResultType {
	case "scalar":
		sample = r.Data.Result // [time, "value"]
	case "vector":
		if len(r.Data.Result) != 1 {
			return 0, fmt.Errorf("prometheus: %s: %d series: %w", expr, len(r.Data.Result), ErrNotOne)
		}
		var s struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result[0], &s); err != nil {
			return 0, fmt.Errorf("prometheus: %s: %w", expr, err)
		}
		sample = s.Value
	default:
		return 0, fmt.Errorf("prometheus: %s: a %s, not one number", expr, r.Data.ResultType)
	}
	if len(sample) != 2 {
		return 0, fmt.Errorf("prometheus: %s: no sample", expr)
	}
	var str string
	if err := json.Unmarshal(sample[1], &str); err != nil {
		return 0, fmt.Errorf("prometheus: %s: sample %s: %w", expr, sample[1], err)
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus: %s: %w", expr, err)
	}
	return v, nil
}

// Series returns the label sets of the series a selector matches.
func Series(ctx context.Context, c *http.Client, base, match string) ([]map[string]string, error) {
	var r struct {
		Status string              `json:"status"`
		Error  string              `json:"error"`
		Data   []map[string]string `json:"data"`
	}
	if err := get(ctx, c, base+"/api/v1/series?match[]="+url.QueryEscape(match), &r); err != nil {
		return nil, fmt.Errorf("prometheus: series %s: %w", match, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: series %s: %s %s", match, r.Status, r.Error)
	}
	return r.Data, nil
}

// ExemplarSeries is one series's exemplars, as /api/v1/query_exemplars
// answers.
type ExemplarSeries struct {
	Labels    map[string]string `json:"seriesLabels"`
	Exemplars []Exemplar        `json:"exemplars"`
}

// Exemplar is one exemplar: its labels (trace_id, span_id), value and
// time (Unix seconds).
type Exemplar struct {
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value,string"`
	Timestamp float64           `json:"timestamp"`
}

// Exemplars returns the exemplars of the series a selector matches over
// the last lookback (the exemplar storage must be on).
func Exemplars(ctx context.Context, c *http.Client, base, match string, lookback time.Duration) ([]ExemplarSeries, error) {
	var r struct {
		Status string           `json:"status"`
		Error  string           `json:"error"`
		Data   []ExemplarSeries `json:"data"`
	}
	end := time.Now()
	q := url.Values{"query": {match}, "start": {strconv.FormatInt(end.Add(-lookback).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix()+1, 10)}}
	if err := get(ctx, c, base+"/api/v1/query_exemplars?"+q.Encode(), &r); err != nil {
		return nil, fmt.Errorf("prometheus: exemplars %s: %w", match, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: exemplars %s: %s %s", match, r.Status, r.Error)
	}
	return r.Data, nil
}

// Get decodes the JSON answer of any API path (u is the whole URL), as the
// functions above do.
func Get(ctx context.Context, c *http.Client, u string, out any) error { return get(ctx, c, u, out) }

func get(ctx context.Context, c *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %w: %.200s", resp.Status, err, b)
	}
	return nil
}
