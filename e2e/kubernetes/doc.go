// Package kubernetes checks deploy/k8s, the lessons of deploy/lessons and the overlays of
// deploy/overlays without a cluster, cheaply, for what a cluster run would show late or not
// at all. Each is checked as kubectl apply -k renders it (kustomize's krusty, in process);
// deploy/k8s's Kustomization must render exactly what kubectl apply -f reads from its files.
//
// Every object is decoded strictly with the k8s.io/api types (a misspelt field fails);
// the objects are cross-checked against each other and against the real service
// binaries: the variables they read (<binary> -env), the ports they listen on, the paths
// they serve on each port (each binary started on loopback with its manifest's
// environment), Secret keys, the grace period against the shutdown settings, the claims
// against the stores' ceilings, the ports the NetworkPolicies name (for the sets that run
// only kub-demo's images: deploy/k8s and the networking lessons); each lesson renders what it
// teaches; and kube-score reports nothing on any set, nginx's and PostgreSQL's included.
//
// Whether the manifests work on a cluster (discovery, DNS, kube-proxy, probes, rollouts,
// volumes) is e2e/cluster's job: make cluster-test runs every set on a real one.
package kubernetes
