// Command tasks looks at and pokes the task queue from outside, for the
// walkthroughs and chaos experiments:
//
//	go run ./cmd/tasks poison   # publish a task that can never succeed (make chaos-poison-task)
//	go run ./cmd/tasks dead     # list the dead letters: subject, reason, deliveries, body
//	go run ./cmd/tasks -nats nats://127.0.0.1:4222 dead
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/failready/failready/app/tasks"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tasks:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tasks", flag.ContinueOnError)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS's URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(*url, nats.Name("tasks"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("%s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "poison":
		return poison(ctx, js, stdout)
	case "dead":
		return dead(ctx, js, stdout)
	default:
		return errors.New("usage: tasks [-nats URL] poison|dead")
	}
}

// poison publishes a welcome task that names no user: the worker can never
// do it, and dead-letters it at once.
func poison(ctx context.Context, js jetstream.JetStream, stdout io.Writer) error {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := tasks.MsgID(1_000_000_000 + int64(binary.BigEndian.Uint32(b[:])>>2)) // not an outbox row's
	m := nats.NewMsg(tasks.WelcomeSubject)
	m.Data = []byte(`{"first_name":"nobody"}`)
	m.Header.Set(tasks.HeaderCreated, time.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(tasks.HeaderRequestID, "poison-"+id)
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published a poison task: %s %s, Nats-Msg-Id %s\n", tasks.WelcomeSubject, m.Data, id)
	return nil
}

// dead lists the dead-letter stream, oldest first.
func dead(ctx context.Context, js jetstream.JetStream, stdout io.Writer) error {
	s, err := js.Stream(ctx, tasks.DeadStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		fmt.Fprintln(stdout, "no dead letters (no stream yet)")
		return nil
	}
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead letters in %s\n", info.State.Msgs, tasks.DeadStream)
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s  %s  reason=%q deliveries=%s request_id=%s body=%s\n", m.Time.UTC().Format(time.RFC3339), m.Subject,
			m.Header.Get(tasks.HeaderDeadReason), m.Header.Get(tasks.HeaderDeadDeliveries), m.Header.Get(tasks.HeaderRequestID), m.Data)
	}
	return nil
}
