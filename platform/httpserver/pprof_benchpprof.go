//go:build benchpprof

package httpserver

// Built only with -tags benchpprof (make bench BENCH_PPROF=folder): serves net/http/pprof on
// $PPROF_ADDR, a loopback address apart from the service's port. Release builds have no
// pprof at all.

import (
	"net/http"
	"net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.Handle("/debug/pprof/allocs", pprof.Handler("allocs"))
	go http.ListenAndServe(addr, mux)
}
