// Free ports for the stack's programs. The stack picks a port and another
// process binds it later, so the port must stay free in between. One from
// the kernel's ephemeral range (what listening on port 0 gives) may not: any
// outgoing connection or any other listener on port 0, in this process or a
// test running beside it, can take it meanwhile (CI once saw nats-server
// fail with "address already in use" on the monitoring port it was given).
// So the ports come from below that range, where the kernel hands out
// nothing by itself, each checked free for TCP and UDP and never given twice
// by this process; each process starts at its own place in the range, so
// that tests running side by side seldom even try the same port.

package devstack

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// LowestFreePort is the bottom of the range FreePort picks from: above
// every port make local listens on by default (the highest is Jaeger's UI,
// 16686; cmd/local's test holds them below), so that a test's stack never
// takes one that a walkthrough's make local, running beside it, needs.
const LowestFreePort = 17000

var picked struct {
	sync.Mutex
	lo, hi, next int // [lo, hi) below the ephemeral range; hi == 0: not read yet
	given        map[int]bool
}

// FreePort returns a loopback port nothing listens on right now (TCP or
// UDP), outside the kernel's ephemeral range.
func FreePort() (int, error) { return pickPort() }

// FreeUDPPort is FreePort, for a UDP listener.
func FreeUDPPort() (int, error) { return pickPort() }

func pickPort() (int, error) {
	picked.Lock()
	defer picked.Unlock()
	if picked.hi == 0 {
		picked.lo, picked.hi = quietRange()
		if picked.hi > picked.lo {
			picked.next = picked.lo + os.Getpid()*7919%(picked.hi-picked.lo)
		}
		picked.given = map[int]bool{}
	}
	for range picked.hi - picked.lo {
		p := picked.next
		if picked.next++; picked.next >= picked.hi {
			picked.next = picked.lo
		}
		if !picked.given[p] && bindable(p) {
			picked.given[p] = true
			return p, nil
		}
	}
	// No such range (another OS, or an ephemeral range that starts low):
	// the kernel's choice.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// quietRange is [LowestFreePort, the first ephemeral port), or an empty range
// where the kernel does not say.
func quietRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil || first <= LowestFreePort {
		return 0, 0
	}
	return LowestFreePort, first
}

// bindable says whether both a TCP and a UDP listener can bind 127.0.0.1:p.
func bindable(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
