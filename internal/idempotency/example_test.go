package idempotency_test

import (
	"fmt"

	"github.com/failready/failready/internal/idempotency"
)

// The caller makes one key per logical call and sends it on every attempt;
// the server refuses a key that breaks the rule before using it.
func ExampleValid() {
	key := idempotency.NewKey()
	fmt.Println(idempotency.Header+":", len(key), "characters, valid:", idempotency.Valid(key))
	fmt.Println(idempotency.Valid("a key\r\nwith: headers"), idempotency.Rule)
	// Output:
	// Idempotency-Key: 36 characters, valid: true
	// false Idempotency-Key must be 1-64 characters of [A-Za-z0-9_-]
}
