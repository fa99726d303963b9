package envconfig_test

import (
	"fmt"
	"time"

	"github.com/failready/failready/internal/envconfig"
)

// Every variable is read with its default and bounds; one error names every
// bad one, so a misconfigured service says all of it at once.
func ExampleReader() {
	set := map[string]string{"RETRY_MAX": "3", "REQUEST_TIMEOUT": "soon", "RATE": "-1"}
	env := envconfig.New(func(name string) string { return set[name] }) // os.Getenv in a service
	retries := env.Int("RETRY_MAX", 2, 0, 10)
	timeout := env.Duration("REQUEST_TIMEOUT", 2*time.Second, time.Millisecond, time.Minute)
	_ = env.Float("RATE", 1, 0, 1)
	fmt.Println(retries, timeout)
	fmt.Println(env.Err())
	// Output:
	// 3 2s
	// invalid configuration: REQUEST_TIMEOUT: "soon" is not a duration (examples: 250ms, 5s, 1m); RATE: -1 is out of range [0, 1]
}
