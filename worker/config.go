package main

import (
	"time"

	"github.com/failready/failready/app/mysqldb"
	"github.com/failready/failready/app/serviceconfig"
	"github.com/failready/failready/internal/envconfig"
)

// config is every setting of the worker, read once from the environment.
// The defaults are the compose stack's.
type config struct {
	serviceconfig.Common // health listener, log level, shutdown bound, telemetry

	NATSURL     string
	Concurrency int           // tasks at once
	MaxDeliver  int           // deliveries before a failing task is dead-lettered
	AckWait     time.Duration // a task not acknowledged within it is delivered again
	StuckAfter  time.Duration // liveness: no progress for this long

	// The demo's "send the welcome message": how long it takes, and how
	// often it fails (0 to 1), to watch retries and dead letters.
	TaskLatency     time.Duration
	TaskFailureRate float64

	MySQL mysqldb.Config
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{Common: serviceconfig.Read(env, ":8002")}
	c.NATSURL = env.String("NATS_URL", "nats://nats:4222")
	c.Concurrency = env.Int("WORKER_CONCURRENCY", 8, 1, 1000)
	c.MaxDeliver = env.Int("WORKER_MAX_DELIVER", 5, 1, 100)
	// A task takes TASK_LATENCY and one bounded insert: 10 s is ample, and
	// a killed worker's tasks come back quickly.
	c.AckWait = env.Duration("WORKER_ACK_WAIT", 10*time.Second, time.Second, time.Hour)
	c.StuckAfter = env.Duration("WORKER_STUCK_AFTER", time.Minute, time.Second, time.Hour)
	c.TaskLatency = env.Duration("TASK_LATENCY", 50*time.Millisecond, 0, time.Minute)
	c.TaskFailureRate = env.Float("TASK_FAILURE_RATE", 0, 0, 1)
	c.MySQL = mysqldb.Read(env, mysqldb.Defaults{User: "failready_worker", Password: "failready-worker", MaxOpenConns: 10, MaxIdleConns: 10, QueryTimeout: 2 * time.Second})
	if err := env.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}
