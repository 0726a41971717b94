package jobs

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/zkml/zkml/api"
)

// webhookClient returns the HTTP client for webhook deliveries. Tenants choose the
// URLs, so unless allowPrivate is set the client refuses to connect to loopback,
// private, link-local and other non-public addresses (checked on the resolved IP at
// connect time, which also covers DNS names and redirects).
func webhookClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			if !api.PublicAddr(ip) {
				return fmt.Errorf("webhook to non-public address %s is not allowed", ip)
			}
			return nil
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	t.Proxy = nil
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}
