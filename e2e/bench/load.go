package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadResult is one fixed-duration run at a set concurrency, or several merged.
type loadResult struct {
	elapsed   time.Duration
	latencies []time.Duration

	Requests int           // answered or failed
	OK       int           // answered with the expected status
	Errors   int           // anything else: another status, a timeout, a refused connection
	Rate     float64       // OK answers per second of the run
	P50, P99 time.Duration // latency of every request
	Sample   string        // one error, to say what went wrong
}

// attack sends requests from targets as fast as conc workers can (a closed loop: each worker
// sends its next request when its last one is answered) for dur, keeping connections alive.
func attack(name string, targets vegeta.Targeter, conc int, dur time.Duration, wantStatus int) loadResult {
	attacker := vegeta.NewAttacker(
		vegeta.Workers(uint64(conc)), vegeta.MaxWorkers(uint64(conc)),
		vegeta.Connections(conc), vegeta.KeepAlive(true), vegeta.HTTP2(false),
		vegeta.Timeout(30*time.Second), vegeta.MaxBody(0), vegeta.Redirects(vegeta.NoFollow),
	)
	var r loadResult
	latencies := make([]time.Duration, 0, 1<<16)
	var first, last time.Time
	for res := range attacker.Attack(targets, vegeta.ConstantPacer{}, dur, name) {
		r.Requests++
		latencies = append(latencies, res.Latency)
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if end := res.End(); end.After(last) {
			last = end
		}
		if int(res.Code) == wantStatus && res.Error == "" {
			r.OK++
			continue
		}
		r.Errors++
		if r.Sample == "" {
			r.Sample = fmt.Sprintf("status %d %s", res.Code, res.Error)
		}
	}
	r.elapsed, r.latencies = last.Sub(first), latencies
	return r.summed()
}

// summed sets Rate, P50 and P99 from the counts, time and latencies.
func (r loadResult) summed() loadResult {
	if r.elapsed > 0 {
		r.Rate = float64(r.OK) / r.elapsed.Seconds()
	}
	r.P50, r.P99 = quantile(r.latencies, 0.50), quantile(r.latencies, 0.99)
	return r
}

// merge adds the runs of b to a, as if they were one run.
func merge(a, b loadResult) loadResult {
	a.Requests += b.Requests
	a.OK += b.OK
	a.Errors += b.Errors
	if a.Sample == "" {
		a.Sample = b.Sample
	}
	a.elapsed += b.elapsed
	a.latencies = append(a.latencies, b.latencies...)
	return a.summed()
}

// interleave runs path and floor by turns, rounds times each, so that whatever else the
// machine is doing weighs on both alike, and returns each one's runs merged.
func interleave(rounds int, path, floor func() loadResult) (loadResult, loadResult) {
	var p, f loadResult
	for range rounds {
		f = merge(f, floor())
		p = merge(p, path())
	}
	return p, f
}

// quantile is the q-quantile (nearest rank) of ds; it sorts ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// roundRobin hands out targets in turn, forever.
func roundRobin(targets []vegeta.Target) vegeta.Targeter {
	var next atomic.Uint64
	return func(t *vegeta.Target) error {
		*t = targets[(next.Add(1)-1)%uint64(len(targets))]
		return nil
	}
}

// bearer is the header of an authenticated request.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func jsonHeader(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return h
}
