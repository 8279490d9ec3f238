// Command check is make netpol-test: it runs a probe pod in the role of users, of tasks and
// of an outsider in the cluster KUBECONFIG names, where deploy/k8s is applied, tries every
// edge, and prints the matrix and whether the cluster enforces deploy/k8s's NetworkPolicies.
//
// It exits 1 when an edge the policies allow does not connect, and, with -expect enforced
// (NETPOL_EXPECT=enforced), when an edge they deny connects.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/kub-demo/kub-demo/e2e/netpol"
)

func main() {
	image := flag.String("image", netpol.ProbeImage, "the probe image, already loaded into the cluster")
	namespace := flag.String("namespace", "default", "the namespace deploy/k8s runs in")
	expect := flag.String("expect", os.Getenv("NETPOL_EXPECT"), `"enforced": fail when a denied edge connects ($NETPOL_EXPECT); empty: only report`)
	flag.Parse()
	if *expect != "" && *expect != "enforced" {
		fmt.Fprintf(os.Stderr, "netpol: -expect %q: want enforced or nothing\n", *expect)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := netpol.Run(ctx, netpol.Options{Image: *image, Namespace: *namespace,
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "netpol: "+format+"\n", args...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpol:", err)
		os.Exit(1)
	}
	report.Write(os.Stdout)
	if problems := report.Problems(*expect == "enforced"); len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("FAIL:", p)
		}
		os.Exit(1)
	}
}
