package kubernetes

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// peer is one end of a connection: a pod (labels, namespace, named ports) or, with
// External set, a client outside the cluster (a LoadBalancer user).
type peer struct {
	Name      string
	External  bool
	Namespace string
	NSLabels  labels.Set
	Labels    labels.Set
	Ports     map[string]int32 // named container ports
}

func podPeer(name string, p podTemplate) peer {
	ports := map[string]int32{}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name != "" {
				ports[cp.Name] = cp.ContainerPort
			}
		}
	}
	return peer{Name: name, Namespace: namespace, NSLabels: nsLabels(namespace), Labels: p.Labels, Ports: ports}
}

func nsLabels(ns string) labels.Set { return labels.Set{"kubernetes.io/metadata.name": ns} }

// direction evaluates the NetworkPolicy API rules, as a conforming CNI does, for one
// side of a connection: may subject (the pod the policies select) send to (Egress) or
// receive from (Ingress) other? dst is the receiving pod, on which named ports
// resolve. A connection needs both its source's egress and its destination's ingress.
func direction(t *testing.T, policies []*networkingv1.NetworkPolicy, subject, other, dst peer, proto corev1.Protocol, port int32, typ networkingv1.PolicyType) bool {
	t.Helper()
	if subject.External {
		return true
	}
	selected := false
	for _, np := range policies {
		if np.Namespace != "" && np.Namespace != subject.Namespace {
			continue
		}
		if !hasType(np, typ) || !matches(t, &np.Spec.PodSelector, subject.Labels) {
			continue
		}
		selected = true
		if typ == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if peersMatch(t, r.From, other, subject.Namespace) && portsMatch(r.Ports, dst, proto, port) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if peersMatch(t, r.To, other, subject.Namespace) && portsMatch(r.Ports, dst, proto, port) {
					return true
				}
			}
		}
	}
	return !selected // a pod no policy of this type selects is not isolated
}

func hasType(np *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // the API's default
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, x := range types {
		if x == typ {
			return true
		}
	}
	return false
}

func matches(t *testing.T, ls *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatalf("label selector %v: %v", ls, err)
	}
	return sel.Matches(set)
}

// peersMatch: an empty list matches every source or destination.
func peersMatch(t *testing.T, peers []networkingv1.NetworkPolicyPeer, p peer, policyNS string) bool {
	if len(peers) == 0 {
		return true
	}
	for _, np := range peers {
		if p.External || np.IPBlock != nil {
			continue // kub-demo uses no ipBlock: outside clients match only "from: any"
		}
		switch {
		case np.NamespaceSelector != nil && np.PodSelector != nil:
			if matches(t, np.NamespaceSelector, p.NSLabels) && matches(t, np.PodSelector, p.Labels) {
				return true
			}
		case np.NamespaceSelector != nil:
			if matches(t, np.NamespaceSelector, p.NSLabels) {
				return true
			}
		case np.PodSelector != nil:
			if p.Namespace == policyNS && matches(t, np.PodSelector, p.Labels) {
				return true
			}
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst peer, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		want := p.Port.IntVal
		if p.Port.Type == intstr.String {
			n, ok := dst.Ports[p.Port.StrVal]
			if !ok {
				continue
			}
			want = n
		}
		if want == port || (p.EndPort != nil && port >= want && port <= *p.EndPort) {
			return true
		}
	}
	return false
}

// connect: may src open a connection to dst on port?
func connect(t *testing.T, set *manifestSet, src, dst peer, proto corev1.Protocol, port int32) bool {
	t.Helper()
	return direction(t, set.NetworkPolicies, src, dst, dst, proto, port, networkingv1.PolicyTypeEgress) &&
		direction(t, set.NetworkPolicies, dst, src, dst, proto, port, networkingv1.PolicyTypeIngress)
}

// The NetworkPolicies of deploy/k8s: only users and tasks pods reach auth, the public
// services stay reachable from outside, users and tasks resolve names through cluster
// DNS, and every other connection to or from kub-demo pods is denied.
func TestNetworkPolicies(t *testing.T) {
	set := loadSet(t, "deploy/k8s")
	pods := map[string]peer{}
	for _, p := range set.pods() {
		pods[p.Labels["app"]] = podPeer(p.Labels["app"], p)
	}
	for _, app := range []string{"auth", "users", "tasks"} {
		if _, ok := pods[app]; !ok {
			t.Fatalf("no pod with app=%s", app)
		}
	}
	external := peer{Name: "outside", External: true}
	dns := peer{Name: "kube-dns", Namespace: "kube-system", NSLabels: nsLabels("kube-system"),
		Labels: labels.Set{"k8s-app": "kube-dns"}, Ports: map[string]int32{"dns": 53, "dns-tcp": 53}}
	other := peer{Name: "another pod in default", Namespace: namespace, NSLabels: nsLabels(namespace),
		Labels: labels.Set{"app": "other"}}
	otherNS := peer{Name: "a users-labelled pod in another namespace", Namespace: "elsewhere", NSLabels: nsLabels("elsewhere"),
		Labels: labels.Set{"app": "users"}}
	web := peer{Name: "a web server outside", External: true}

	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	cases := []struct {
		src, dst peer
		proto    corev1.Protocol
		port     int32
		want     bool
	}{
		{pods["users"], pods["auth"], tcp, 80, true},
		{pods["tasks"], pods["auth"], tcp, 80, true},
		{external, pods["users"], tcp, 8080, true},
		{external, pods["tasks"], tcp, 8000, true},
		{pods["users"], dns, udp, 53, true},
		{pods["users"], dns, tcp, 53, true},
		{pods["tasks"], dns, udp, 53, true},

		{external, pods["auth"], tcp, 80, false},
		{other, pods["auth"], tcp, 80, false},
		{otherNS, pods["auth"], tcp, 80, false},
		{pods["auth"], pods["auth"], tcp, 80, false},
		{pods["users"], pods["auth"], tcp, 8080, false},
		{pods["users"], pods["tasks"], tcp, 8000, false},
		{pods["tasks"], pods["users"], tcp, 8080, false},
		{external, pods["users"], tcp, 22, false},
		{pods["auth"], dns, udp, 53, false},
		{pods["auth"], web, tcp, 443, false},
		{pods["users"], web, tcp, 443, false},
		{pods["tasks"], web, tcp, 80, false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s → %s %s/%d", c.src.Name, c.dst.Name, c.proto, c.port)
		if got := connect(t, set, c.src, c.dst, c.proto, c.port); got != c.want {
			t.Errorf("%s: allowed=%v, want %v", name, got, c.want)
		}
	}

	// Every Service port of deploy/k8s is open to the clients it exists for.
	for _, svc := range set.Services {
		for _, p := range set.selected(svc) {
			_, cp := findPort(p.Spec, svc.Spec.Ports[0].TargetPort)
			dst := podPeer(p.Labels["app"], p)
			clients := []peer{external}
			if svc.Spec.Type == corev1.ServiceTypeClusterIP || svc.Spec.Type == "" {
				clients = []peer{pods["users"], pods["tasks"]}
			}
			for _, c := range clients {
				if !connect(t, set, c, dst, tcp, cp.ContainerPort) {
					t.Errorf("service %s: %s cannot reach %s:%d", svc.Name, c.Name, dst.Name, cp.ContainerPort)
				}
			}
		}
	}
}
