package devstack

import (
	"net"
	"runtime"
	"strconv"
	"testing"
)

// TestFreePortOutsideTheEphemeralRange: the ports are distinct, bindable,
// and (on Linux, which says its range) never ones the kernel would hand out
// to a connection or a port-0 listener meanwhile.
func TestFreePortOutsideTheEphemeralRange(t *testing.T) {
	lo, hi := quietRange()
	quiet := hi > lo // elsewhere than Linux, the kernel's choice
	if runtime.GOOS == "linux" && !quiet {
		t.Fatal("no range below the kernel's ephemeral ports (/proc/sys/net/ipv4/ip_local_port_range)")
	}
	seen := map[int]bool{}
	for i := range 200 {
		free := FreePort
		if i%2 == 1 {
			free = FreeUDPPort
		}
		p, err := free()
		if err != nil {
			t.Fatal(err)
		}
		if quiet && (p < lo || p >= hi) {
			t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
	// A port something listens on is never given.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	if bindable(taken) {
		t.Fatalf("port %d is listened on, yet bindable", taken)
	}
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err != nil {
		t.Fatalf("FreePort gave %d, which does not bind: %v", p, err)
	} else {
		l.Close()
	}
}
