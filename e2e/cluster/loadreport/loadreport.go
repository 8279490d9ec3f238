// Package loadreport is what the cluster test's load client reports: it writes it as JSON,
// the test reads it back.
package loadreport

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Report is what the clients did since /start; written as JSON, decoded by the test.
type Report struct {
	Running bool    `json:"running"`
	Seconds float64 `json:"seconds"`
	// Signup is POST /signup of the clients' accounts, Login POST /login, Create POST
	// /tasks, List GET /tasks (which must list the task the client just stored).
	Signup Counts `json:"signup"`
	Login  Counts `json:"login"`
	Create Counts `json:"create"`
	List   Counts `json:"list"`
	// Failures are the first failed requests: when, which client, what.
	Failures []string `json:"failures"`
	// Filled in by /stop: of the tasks acknowledged with a 201, how many GET /tasks lists,
	// and the first missing ones.
	Acknowledged int      `json:"acknowledged"`
	Listed       int      `json:"listed"`
	Missing      []string `json:"missing"`
	MissingCount int      `json:"missingCount"`
	CheckErrors  []string `json:"checkErrors"`
	// Pods counts the answers by the pods the trail named: "tasks tasks-deployment-5d2-x7k"
	// from X-Served-By, "auth auth-deployment-8f1-q2w" from X-Auth-Verified-By (cached or not).
	Pods map[string]int `json:"pods"`
}

// Counts are the requests of one kind that were sent, and those of them that failed.
type Counts struct {
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
}

// Failed is every failed request and every failure of the final check.
func (r Report) Failed() int {
	return r.Signup.Failed + r.Login.Failed + r.Create.Failed + r.List.Failed + r.MissingCount + len(r.CheckErrors)
}

func (r Report) String() string {
	return fmt.Sprintf("%d requests in %.0fs (%d POST /login, %d POST /tasks, %d GET /tasks, %d POST /signup), %d failed; "+
		"%d tasks acknowledged, %d of them listed afterwards",
		r.Signup.Sent+r.Login.Sent+r.Create.Sent+r.List.Sent, r.Seconds, r.Login.Sent, r.Create.Sent, r.List.Sent, r.Signup.Sent,
		r.Signup.Failed+r.Login.Failed+r.Create.Failed+r.List.Failed, r.Acknowledged, r.Listed)
}

// PodsOf lists the pods of service the trail named, in order, e.g. PodsOf("auth").
func (r Report) PodsOf(service string) []string {
	var pods []string
	for _, key := range slices.Sorted(maps.Keys(r.Pods)) {
		if name, ok := strings.CutPrefix(key, service+" "); ok {
			pods = append(pods, name)
		}
	}
	return pods
}
