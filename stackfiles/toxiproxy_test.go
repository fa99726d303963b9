package stackfiles

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestToxiproxyOnEveryHop: the proxies compose loads forward to real
// services and ports, toxiproxy exposes their listen ports, and the services
// and the worker are pointed at the proxies (service2, MySQL, NATS), not
// around them.
func TestToxiproxyOnEveryHop(t *testing.T) {
	var proxies []struct {
		Name, Listen, Upstream string
		Enabled                bool
	}
	if err := json.Unmarshal([]byte(readFile(t, "deploy/toxiproxy/toxiproxy.json")), &proxies); err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t)
	toxi := p.Services["toxiproxy"]
	listen := map[string]string{}
	for _, px := range proxies {
		host, port, _ := strings.Cut(px.Upstream, ":")
		if svc, ok := p.Services[host]; !ok || !slices.Contains(ports(svc), port) || !px.Enabled {
			t.Errorf("proxy %s: upstream %s is not a compose service and port (or disabled)", px.Name, px.Upstream)
		}
		_, lport, _ := strings.Cut(px.Listen, ":")
		if !slices.Contains(ports(toxi), lport) {
			t.Errorf("proxy %s listens on %s, which toxiproxy does not expose", px.Name, lport)
		}
		listen[px.Name] = "toxiproxy:" + lport
	}
	u, _ := url.Parse(*p.Services["service1"].Environment["SERVICE2_URL"])
	if u.Host != listen["service2"] {
		t.Errorf("service1 calls %s, not the service2 proxy %s", u.Host, listen["service2"])
	}
	for svc, natsProxy := range map[string]string{"service2": "nats", "worker": "worker-nats"} {
		env := p.Services[svc].Environment
		if got := *env["MYSQL_ADDR"]; got != listen["mysql"] {
			t.Errorf("%s reaches MySQL at %s, not the proxy %s", svc, got, listen["mysql"])
		}
		if u, _ := url.Parse(*env["NATS_URL"]); u.Host != listen[natsProxy] {
			t.Errorf("%s reaches NATS at %s, not the proxy %s", svc, u.Host, listen[natsProxy])
		}
	}
	for _, svc := range []string{"service1", "service2", "worker"} {
		if r := p.Services[svc].Restart; r != "always" {
			t.Errorf("%s: restart %q; make chaos-kill needs always (unless-stopped ignores a kill)", svc, r)
		}
	}
}
