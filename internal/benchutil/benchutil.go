// Package benchutil holds what the benchmarks that time their own phases share.
package benchutil

import (
	"testing"
	"time"
)

// Ms names durations summed over a benchmark's b.N ops, each reported in milliseconds per op.
type Ms map[string]time.Duration

// Ratios names pairs of such sums, each reported as the first over the second.
type Ratios map[string][2]time.Duration

// MsPerOp is d, summed over b.N ops, in milliseconds per op.
func MsPerOp(b *testing.B, d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000 / float64(b.N)
}

// Report reports ms and ratios as b's metrics in place of ns/op (which it reports as 0: the
// loop times more than the phases measured).
func Report(b *testing.B, ms Ms, ratios Ratios) {
	b.Helper()
	for unit, d := range ms {
		b.ReportMetric(MsPerOp(b, d), unit)
	}
	for unit, r := range ratios {
		b.ReportMetric(float64(r[0])/float64(r[1]), unit)
	}
	b.ReportMetric(0, "ns/op")
}
