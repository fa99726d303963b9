package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkServer/bare-2         	  450846	      2000 ns/op	    1840 B/op	      16 allocs/op
BenchmarkServer/bare-2         	  488852	      3000 ns/op	    1840 B/op	      16 allocs/op
BenchmarkServer/bare-2         	  488852	      9000 ns/op	    1840 B/op	      16 allocs/op
BenchmarkServer/otelhttp-2     	  100000	     20000 ns/op	    7899 B/op	      55 allocs/op
BenchmarkServer/full-2         	   30000	     50000 ns/op	   12854 B/op	     123 allocs/op
BenchmarkClient/bare-2         	   10000	    100000 ns/op	    6996 B/op	      81 allocs/op
BenchmarkClient/full-2         	   10000	    150000 ns/op	   17717 B/op	     155 allocs/op
PASS
`

func TestRatiosFromMedians(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if r.NsOp["BenchmarkServer/bare"] != 3000 {
		t.Errorf("median of 2000, 3000, 9000: %v", r.NsOp["BenchmarkServer/bare"])
	}
	for k, want := range map[string]float64{
		"BenchmarkServer/full / BenchmarkServer/otelhttp": 2.5,
		"BenchmarkClient/full / BenchmarkClient/bare":     1.5,
	} {
		if r.Ratios[k] != want {
			t.Errorf("%s = %v, want %v", k, r.Ratios[k], want)
		}
	}
	if r.Allocs["BenchmarkServer/full"] != 123 {
		t.Errorf("allocs %v", r.Allocs)
	}
	if _, err := parse(strings.NewReader("PASS\n")); err == nil {
		t.Error("no benchmark lines accepted")
	}
}

func TestPartsReportedAsWhatTheyAdd(t *testing.T) {
	in := sample + `BenchmarkMiddleware/none-2   	  100000	     10000 ns/op	    7899 B/op	      55 allocs/op
BenchmarkMiddleware/accesslog-2	  100000	     12500 ns/op	    8451 B/op	      62 allocs/op
BenchmarkMiddleware/shed-2     	  100000	     10100 ns/op	    7899 B/op	      55 allocs/op
`
	var out strings.Builder
	if err := run(nil, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| accesslog | +2500 | +7 |", "| shed | +100 | +0 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "| none |") {
		t.Errorf("the baseline reported as a part:\n%s", out.String())
	}
}
