package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// loadRow is one path under load, set against its floor.
type loadRow struct {
	Path   string
	Result loadResult
	// Floor names what Result is compared with; FloorValue is its figure, Ratio the quotient
	// (for throughput: req/s ÷ floor; for the 1M page: p99 ÷ the 1k page's p99).
	Floor      string
	FloorValue string
	Ratio      float64
	Target     target
}

// target is a bound on a ratio (or a figure): at least or at most Limit. A zero target
// is "no target".
type target struct {
	AtMost bool
	Limit  float64
}

func atLeast(limit float64) target { return target{Limit: limit} }
func atMost(limit float64) target  { return target{AtMost: true, Limit: limit} }

func (t target) String() string {
	switch {
	case t.Limit == 0:
		return "—"
	case t.AtMost:
		return fmt.Sprintf("≤ %g", t.Limit)
	default:
		return fmt.Sprintf("≥ %g", t.Limit)
	}
}

// met says whether v meets t: "yes", "**no**", or "—" with no target.
func (t target) met(v float64) string {
	switch {
	case t.Limit == 0:
		return "—"
	case t.AtMost && v <= t.Limit, !t.AtMost && v >= t.Limit:
		return "yes"
	default:
		return "**no**"
	}
}

// ratio is a ÷ b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// serviceRow is one started service process.
type serviceRow struct {
	Name     string
	Data     string
	Ready    time.Duration
	IdleRSS  int64
	PeakRSS  int64
	Targeted bool // ready and idle RSS targets apply (not to a store seeded with 1M tasks)
}

// cpuRow is the CPU time per request of a path's services and of its floor's processes.
type cpuRow struct {
	Path, Procs, FloorProcs     string
	PerRequest, FloorPerRequest time.Duration
}

// floorRow is one floor as measured.
type floorRow struct {
	Name, Meaning, Value string
}

const (
	readyTarget   = 100 * time.Millisecond
	idleRSSTarget = 20 << 20
)

// writeReport prints the Markdown tables of one run.
func writeReport(w io.Writer, header string, loads []loadRow, floors []floorRow, services []serviceRow, cpu []cpuRow) {
	fmt.Fprintf(w, "%s\n\n", header)
	fmt.Fprintln(w, "| path | req/s | p50 | p99 | errors | floor | floor figure | ratio | target | met |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|---|--:|--:|:-:|:-:|")
	for _, l := range loads {
		ratioText := "—"
		if l.Floor != "" {
			ratioText = fmt.Sprintf("%.2f", l.Ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			l.Path, formatRate(l.Result.Rate), formatDuration(l.Result.P50), formatDuration(l.Result.P99),
			formatErrors(l.Result), orDash(l.Floor), orDash(l.FloorValue), ratioText, l.Target, l.Target.met(l.Ratio))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| floor | figure | what it is |")
	fmt.Fprintln(w, "|---|--:|---|")
	for _, f := range floors {
		fmt.Fprintf(w, "| %s | %s | %s |\n", f.Name, f.Value, f.Meaning)
	}
	if len(cpu) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| path | CPU per request (user + system) | floor's CPU per request | ratio |")
		fmt.Fprintln(w, "|---|--:|--:|--:|")
		for _, c := range cpu {
			fmt.Fprintf(w, "| %s | %s (%s) | %s (%s) | %.2f |\n", c.Path, formatDuration(c.PerRequest), c.Procs,
				formatDuration(c.FloorPerRequest), c.FloorProcs, ratio(float64(c.PerRequest), float64(c.FloorPerRequest)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| service | store | exec → ready | idle RSS | peak RSS | targets (ready ≤ %s, idle RSS < %d MB) |\n", formatDuration(readyTarget), idleRSSTarget>>20)
	fmt.Fprintln(w, "|---|---|--:|--:|--:|:-:|")
	for _, s := range services {
		met := "— (no target with this store)"
		if s.Targeted {
			met = "yes"
			if s.Ready > readyTarget || s.IdleRSS >= idleRSSTarget {
				met = "**no**"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", s.Name, s.Data, formatDuration(s.Ready), formatMB(s.IdleRSS), formatMB(s.PeakRSS), met)
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func formatErrors(r loadResult) string {
	if r.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d of %d (%s)", r.Errors, r.Requests, strings.ReplaceAll(r.Sample, "|", "/"))
}

// formatRate writes a rate with three significant figures at most (no false precision).
func formatRate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}

func formatMB(b int64) string {
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}
