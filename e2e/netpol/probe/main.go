// Command probe tries to reach each URL it is given, from inside a pod, and prints one JSON
// line per URL saying how far it got: the name did not resolve, the connection timed out
// (what a NetworkPolicy that drops packets looks like), was refused, or an HTTP answer came
// back. It is the netpol check's probe pod (e2e/netpol), built FROM scratch.
//
//	probe [-wait 3s] [-timeout 3s] name=URL...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kub-demo/kub-demo/e2e/netpol"
)

func main() {
	wait := flag.Duration("wait", 3*time.Second, "wait this long before the first try: a network policy controller learns a new pod's address a moment after it starts")
	timeout := flag.Duration("timeout", 3*time.Second, "how long one try may take")
	flag.Parse()
	time.Sleep(*wait)
	out := json.NewEncoder(os.Stdout)
	for _, arg := range flag.Args() {
		name, url, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "probe: %q is not name=URL\n", arg)
			os.Exit(2)
		}
		result := netpol.Try(context.Background(), url, *timeout)
		result.Edge = name
		out.Encode(result)
	}
}
