package main

import (
	"strings"
	"testing"
)

func TestCollectedReadsCallgrindsTotal(t *testing.T) {
	stderr := []byte("==12231== Callgrind, a call-graph generating cache profiler\n==12231== \n==12231== Events    : Ir\n==12231== Collected : 68654601\n==12231== \n==12231== I   refs:      68,654,601\n")
	n, err := collected(stderr)
	if err != nil || n != 68654601 {
		t.Fatalf("collected = %d, %v", n, err)
	}
	if _, err := collected([]byte("valgrind: failed to start tool 'callgrind'\n")); err == nil {
		t.Error("no count, no error")
	}
}

func TestRatiosAndTheGate(t *testing.T) {
	base := newResult(map[string]float64{
		"Server/bare": 12000, "Server/otelhttp": 48000, "Server/full": 96000, "Client/bare": 100000, "Client/full": 170000,
	})
	if got := base.Ratios["Server/full / Server/otelhttp"]; got != 2 {
		t.Errorf("full / otelhttp = %v, want 2", got)
	}
	if got := base.Ratios["Client/full / Client/bare"]; got != 1.7 {
		t.Errorf("client ratio = %v, want 1.7", got)
	}
	var out strings.Builder
	if err := compare(&out, base, base, 0.03); err != nil {
		t.Fatalf("a run against itself: %v", err)
	}
	// 2 % more work in the full stack passes; 5 % fails, and says which.
	within := newResult(map[string]float64{
		"Server/bare": 12000, "Server/otelhttp": 48000, "Server/full": 97920, "Client/bare": 100000, "Client/full": 170000,
	})
	if err := compare(&out, base, within, 0.03); err != nil {
		t.Errorf("2 %% failed a 3 %% gate: %v", err)
	}
	worse := newResult(map[string]float64{
		"Server/bare": 12000, "Server/otelhttp": 48000, "Server/full": 100800, "Client/bare": 100000, "Client/full": 170000,
	})
	err := compare(&out, base, worse, 0.03)
	if err == nil || !strings.Contains(err.Error(), "Server/full / Server/otelhttp: 2.100× against a baseline of 2.000×") {
		t.Errorf("5 %% passed a 3 %% gate or was not named: %v", err)
	}
	// A benchmark that vanished is a failure, not a pass.
	delete(worse.Ratios, "Client/full / Client/bare")
	if err := compare(&out, base, worse, 0.03); err == nil || !strings.Contains(err.Error(), "Client/full / Client/bare: missing") {
		t.Errorf("a missing ratio passed: %v", err)
	}
}

func TestUsage(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), nil, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("no -test: %v", err)
	}
	if err := run(t.Context(), []string{"-test", "x", "-n1", "5", "-n2", "5"}, &out); err == nil {
		t.Error("-n2 = -n1 accepted")
	}
}

func TestPartsReportedAsWhatTheyAdd(t *testing.T) {
	per := map[string]float64{partsBase: 40000}
	for i, p := range parts {
		per[p] = 40000 + float64(100*(i+1))
	}
	var out strings.Builder
	reportParts(&out, per)
	for _, want := range []string{"| requestid | +100 |", "| deadline | +900 |", "40000 instructions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if res := newResult(per); len(res.PerRequest) != 0 {
		t.Errorf("parts went into the gated result: %v", res.PerRequest)
	}
}

func TestBudgets(t *testing.T) {
	var out strings.Builder
	if err := checkBudgets(&out, map[string]float64{"ExemplarCost/without": 40000, "ExemplarCost/with": 42999}); err != nil {
		t.Errorf("2 999 instructions failed a 3 000 budget: %v", err)
	}
	if !strings.Contains(out.String(), "| ExemplarCost/with | ExemplarCost/without | +2999 | under 3000 |") {
		t.Errorf("report:\n%s", out.String())
	}
	err := checkBudgets(&out, map[string]float64{"ExemplarCost/without": 40000, "ExemplarCost/with": 43000})
	if err == nil || !strings.Contains(err.Error(), "ExemplarCost/with adds 3000 instructions per request to ExemplarCost/without; its budget is under 3000") {
		t.Errorf("3 000 instructions passed a budget of under 3 000: %v", err)
	}
	if err := checkBudgets(&out, map[string]float64{"ExemplarCost/without": 40000}); err == nil {
		t.Error("a budgeted part that was not measured passed")
	}
}
