// Package kubernetes checks deploy/k8s and its lesson examples without a cluster.
//
// The tests decode every manifest strictly with the k8s.io/api types, cross-check
// the objects against each other and against the real service binaries (the
// variables they read, the port they listen on, the routes they serve), evaluate
// the NetworkPolicies, run kube-score, and finally start the binaries on loopback
// with the environment the kubelet would give each container and drive the
// course's login → POST /tasks → GET /tasks flow through them.
package kubernetes
