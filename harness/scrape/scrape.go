// Package scrape reads a service's Prometheus metrics, for end-to-end tests.
package scrape

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a service's /metrics, parsed.
type Metrics map[string]*dto.MetricFamily

// Scrape GETs baseURL/metrics and parses the Prometheus text format.
func Scrape(t testing.TB, baseURL string) Metrics {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", baseURL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics is not in the Prometheus text format: %v", baseURL, err)
	}
	return families
}

// Value sums the series of metric name whose labels include labels: a counter's or gauge's
// value, a histogram's count of observations. ok is false when no series matches.
func (m Metrics) Value(name string, labels map[string]string) (sum float64, ok bool) {
	family := m[name]
	if family == nil {
		return 0, false
	}
series:
	for _, metric := range family.GetMetric() {
		have := map[string]string{}
		for _, pair := range metric.GetLabel() {
			have[pair.GetName()] = pair.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		ok = true
		switch {
		case metric.Counter != nil:
			sum += metric.GetCounter().GetValue()
		case metric.Gauge != nil:
			sum += metric.GetGauge().GetValue()
		case metric.Histogram != nil:
			sum += float64(metric.GetHistogram().GetSampleCount())
		}
	}
	return sum, ok
}
