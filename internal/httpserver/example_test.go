package httpserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/failready/failready/internal/httpserver"
)

// A server with every timeout set serves until its context ends (SIGTERM in
// a service); then it turns not ready, drains, and shuts down gracefully.
func ExampleRun() {
	t := httpserver.Timeouts{ReadHeader: time.Second, Read: 5 * time.Second, Write: 10 * time.Second, Idle: time.Minute,
		Drain: 50 * time.Millisecond, Shutdown: time.Second}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	srv := httpserver.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }), t, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- httpserver.Run(ctx, srv, ln, t, func() { fmt.Println("not ready") }, logger) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// 200 hello
	// not ready
	// stopped: <nil>
}
