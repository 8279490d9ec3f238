//go:build cluster

package cluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/e2e/netpol"
)

// testNetworkPolicies is make netpol-test on deploy/k8s: every edge between the roles tried
// from probe pods. Allowed edges must connect; with NETPOL_EXPECT=enforced, denied edges
// must not. Then, when NETPOL_OFF and NETPOL_ON are set (commands that turn the cluster's
// enforcement off and on again), the same check with enforcement off must say so.
func testNetworkPolicies(t *testing.T, imageLoad []string, figure func(string, ...any)) {
	run(t, 5*time.Minute, "make", "netpol-image")
	run(t, 5*time.Minute, imageLoad[0], append(imageLoad[1:], netpol.ProbeImage)...)
	expectEnforced := os.Getenv("NETPOL_EXPECT") == "enforced"
	check := func(t *testing.T) netpol.Report {
		start := time.Now()
		report, err := netpol.Run(context.Background(), netpol.Options{Image: netpol.ProbeImage, Namespace: "default", Log: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		var matrix strings.Builder
		report.Write(&matrix)
		t.Logf("the NetworkPolicy matrix (%s):\n%s", since(start), matrix.String())
		return report
	}

	report := check(t)
	figure("NetworkPolicies on deploy/k8s: %s (NETPOL_EXPECT=%q)", report.Verdict(), os.Getenv("NETPOL_EXPECT"))
	for _, p := range report.Problems(expectEnforced) {
		t.Error(p)
	}

	off, on := os.Getenv("NETPOL_OFF"), os.Getenv("NETPOL_ON")
	if off == "" || on == "" {
		t.Log("NETPOL_OFF and NETPOL_ON are not set: the verdict with enforcement off is not shown")
		return
	}
	t.Run("enforcement-off", func(t *testing.T) {
		t.Cleanup(func() { run(t, 5*time.Minute, "sh", "-c", on) })
		run(t, 5*time.Minute, "sh", "-c", off)
		report := check(t)
		figure("NetworkPolicies with the cluster's enforcement off (NETPOL_OFF): %s", report.Verdict())
		if v := report.Verdict(); v != netpol.NotEnforced {
			t.Errorf("verdict %q with enforcement off, want %q", v, netpol.NotEnforced)
		}
		for _, p := range report.Problems(false) {
			t.Error(p)
		}
	})
}
