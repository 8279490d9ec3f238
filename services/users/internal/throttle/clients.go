package throttle

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the proxies whose X-Forwarded-For is believed: behind a load balancer, an
// ingress or the frontend's proxy, every client's TCP peer is the proxy, and the limits per
// address would hold all of them as one. The zero of *Proxies (nil) believes no header.
type Proxies struct {
	trusted []netip.Prefix
}

// ParseProxies reads a comma-separated list of CIDRs or addresses (TRUSTED_PROXIES); an
// empty list returns nil.
func ParseProxies(list string) (*Proxies, error) {
	var p Proxies
	for field := range strings.SplitSeq(list, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(field)
		if err != nil {
			addr, addrErr := netip.ParseAddr(field)
			if addrErr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", field)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		p.trusted = append(p.trusted, prefix.Masked())
	}
	if len(p.trusted) == 0 {
		return nil, nil
	}
	return &p, nil
}

func (p *Proxies) trusts(addr netip.Addr) bool {
	for _, prefix := range p.trusted {
		if prefix.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// ClientKey is the key of the client that sent r (see the package's ClientKey): its TCP
// peer's, or, when that peer is a trusted proxy, the address X-Forwarded-For names before the
// trusted proxies that added themselves to it, read from the right (what the client wrote
// itself, at the left, is never believed past a proxy that is not trusted).
func (p *Proxies) ClientKey(r *http.Request) string {
	client := ClientKey(r.RemoteAddr)
	peer, err := netip.ParseAddr(client)
	if p == nil || err != nil || !p.trusts(peer) {
		return client
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return client // a hop that is no address: the last believed one is the client
		}
		client = ClientKey(hop.String())
		if !p.trusts(hop) {
			return client
		}
	}
	return client
}
