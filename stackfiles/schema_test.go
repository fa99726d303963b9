package stackfiles

import (
	"regexp"
	"strings"
	"testing"

	"github.com/failready/failready/internal/outbox"
)

// TestOutboxSchema: the schema MySQL is started with creates the outbox
// table the pattern declares (outbox.Schema), comments and spacing aside.
func TestOutboxSchema(t *testing.T) {
	norm := func(s string) string {
		s = regexp.MustCompile(`--[^\n]*`).ReplaceAllString(s, "")
		return strings.Join(strings.Fields(s), " ")
	}
	sql := norm(readFile(t, "deploy/mysql/init/01-schema.sql"))
	if want := norm(outbox.Schema) + ";"; !strings.Contains(sql, want) {
		t.Errorf("deploy/mysql/init/01-schema.sql does not create the outbox table as outbox.Schema does:\n%s", want)
	}
}
