package metrics_test

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/failready/failready/internal/metrics"
)

// Metrics go out as DogStatsD over UDP and never block: here to a socket
// of the example's own, where statsd-exporter would listen.
func ExampleClient() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer pc.Close()
	c := metrics.New(metrics.Options{Addr: pc.LocalAddr().String(), Service: "service1"})
	tags := metrics.NewTags(100, func(route string) []string { return []string{"route:" + route} })
	c.Count("users.created", 1, tags.Get("/users"))
	c.Close() // flushes
	buf := make([]byte, 64<<10)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			fmt.Println("nothing received:", err)
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if strings.HasPrefix(line, "users.created") {
				fmt.Println(line)
				return
			}
		}
	}
	// Output:
	// users.created:1|c|#service:service1,route:/users
}
