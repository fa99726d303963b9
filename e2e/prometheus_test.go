//go:build e2e

package e2e

// Prometheus's HTTP API, as the tests query it: one query, its single
// value, the series of a name.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// promResult is an instant query's answer.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

func promQuery(t *testing.T, base, expr string) promResult {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r promResult
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v: %s", expr, err, b)
	}
	return r
}

// promSeries returns the label sets of the series named name.
func promSeries(t *testing.T, base, name string) []map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/series?match[]=" + url.QueryEscape(name))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}

// promValue is a query's single value (0 and false when it has none).
func promValue(t *testing.T, base, expr string) (float64, bool) {
	t.Helper()
	r := promQuery(t, base, expr)
	if r.Status != "success" {
		t.Fatalf("%s: %s %s", expr, r.Status, r.Error)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	var s struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result[0], &s); err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	return v, err == nil
}
