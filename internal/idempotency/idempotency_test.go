package idempotency_test

import (
	"strings"
	"testing"

	"github.com/failready/failready/internal/idempotency"
)

func TestValid(t *testing.T) {
	for key, want := range map[string]bool{
		idempotency.NewKey():                    true,
		"a":                                     true,
		"A-z_09":                                true,
		strings.Repeat("k", idempotency.MaxLen): true,
		"":                                      false,
		strings.Repeat("k", idempotency.MaxLen+1): false,
		"key with space":       false,
		"key\r\nX-Injected: 1": false,
		"ключ":                 false,
		"a/b":                  false,
	} {
		if got := idempotency.Valid(key); got != want {
			t.Errorf("Valid(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestNewKeysDiffer(t *testing.T) {
	if a, b := idempotency.NewKey(), idempotency.NewKey(); a == b {
		t.Fatalf("two keys are equal: %s", a)
	}
}
