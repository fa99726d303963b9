package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestServeAndProbe: the door serves with the project's Loki config, and
// Loki's probe (-health) passes against it, and fails once it is gone.
func TestServeAndProbe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-config.file=../../deploy/loki/config.yaml", "-listen=127.0.0.1:0"}, &out, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not serving within 10 s")
	}
	var probeOut bytes.Buffer
	if err := run(ctx, []string{"-health", "-health.url=http://" + addr + "/ready"}, &probeOut, nil); err != nil {
		t.Fatalf("-health against the door: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-health", "-health.url=http://" + addr + "/ready"}, &probeOut, nil); err == nil {
		t.Error("-health passed with the door stopped")
	}
	if !strings.Contains(out.String(), `"index_labels":"service.name,deployment.environment.name"`) {
		t.Errorf("the door's log: %s", out.String())
	}
	if err := run(context.Background(), []string{"-config.file=/nonexistent"}, &out, nil); err == nil {
		t.Error("a missing config was taken")
	}
}
