package metrics

import (
	"net"
	"strconv"

	"github.com/failready/failready/internal/envconfig"
)

// ReadAddr reads where to send metrics: STATSD_ADDR (host:port) when set,
// "off" to send none; otherwise DD_AGENT_HOST and DD_DOGSTATSD_PORT (8125 by
// default), the variables a Datadog agent setup already has; otherwise
// statsd-exporter's compose address.
func ReadAddr(env *envconfig.Reader) string {
	if env.String("STATSD_ADDR", "") == "off" {
		return ""
	}
	if host := env.String("DD_AGENT_HOST", ""); host != "" && env.String("STATSD_ADDR", "") == "" {
		port := env.Int("DD_DOGSTATSD_PORT", 8125, 1, 65535)
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	return env.HostPort("STATSD_ADDR", "statsd-exporter:9125")
}
