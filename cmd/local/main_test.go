package main

import (
	"net"
	"strings"
	"testing"
)

func TestCheckFreeNamesEveryTakenPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	if err := checkFree([]namedAddr{{"service1", freeAddr}, {"service2", "127.0.0.1:0"}}); err != nil {
		t.Fatalf("free ports refused: %v", err)
	}
	err = checkFree([]namedAddr{{"service1", freeAddr}, {"prometheus", busy.Addr().String()}})
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()+" (prometheus)") ||
		!strings.Contains(err.Error(), "-prometheus 127.0.0.1:0") || strings.Contains(err.Error(), "service1") {
		t.Fatalf("a taken port: %v", err)
	}
}
