//go:build benchpprof

package httpserver

// Built only with -tags benchpprof (make bench BENCH_PPROF=folder): the metrics port also
// serves net/http/pprof, for the benchmark's profiles. Release builds have no pprof at all.

import (
	"net/http"
	"net/http/pprof"
)

func init() {
	debugRoutes = func(mux *http.ServeMux) {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.Handle("/debug/pprof/allocs", pprof.Handler("allocs"))
	}
}
