// Package kubernetes checks deploy/k8s and its lesson examples without a cluster, cheaply,
// for what a cluster run would show late or not at all.
//
// Every manifest is decoded strictly with the k8s.io/api types (a misspelt field fails);
// the objects are cross-checked against each other and against the real service
// binaries: the variables they read (<binary> -env), the ports they listen on, the paths
// they serve on each port (each binary started on loopback with its manifest's
// environment), Secret keys, the grace period against the shutdown settings, the claims
// against the stores' ceilings, the ports the NetworkPolicies name; and kube-score
// reports nothing on deploy/k8s.
//
// Whether the manifests work on a cluster (discovery, DNS, kube-proxy, probes, rollouts,
// volumes) is e2e/cluster's job: make cluster-test runs every set on a real one.
package kubernetes
