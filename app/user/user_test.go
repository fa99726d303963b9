package user_test

import (
	"strings"
	"testing"

	"github.com/failready/failready/app/user"
)

func TestValidate(t *testing.T) {
	ok := []user.New{
		{FirstName: "joe", LastName: "cool"},
		{FirstName: "J", LastName: "O'Brien-Smith"},
		{FirstName: strings.Repeat("é", 30), LastName: strings.Repeat("名", 30)},
		{FirstName: "Mary Ann", LastName: "van der Berg"},
	}
	for _, n := range ok {
		if err := n.Validate(); err != nil {
			t.Errorf("%+v: %v", n, err)
		}
	}
	bad := map[string]user.New{
		"first_name is required":         {FirstName: "", LastName: "x"},
		"last_name is required":          {FirstName: "x", LastName: "   "},
		"first_name must be at most 30":  {FirstName: strings.Repeat("a", 31), LastName: "x"},
		"last_name must be printable":    {FirstName: "x", LastName: "a\nb"},
		"first_name must be printable":   {FirstName: "a\x00", LastName: "x"},
		"last_name must be valid UTF-8":  {FirstName: "x", LastName: "\xff"},
		"first_name must be printable t": {FirstName: "\u202e", LastName: "x"},
	}
	for want, n := range bad {
		err := n.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got %v, want %q", n, err, want)
		}
	}
	err := user.New{}.Validate()
	if err == nil || !strings.Contains(err.Error(), "first_name") || !strings.Contains(err.Error(), "last_name") {
		t.Errorf("both problems reported at once: %v", err)
	}
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "42": 42, "9223372036854775807": 1<<63 - 1} {
		if got, err := user.ParseID(in); err != nil || got != want {
			t.Errorf("ParseID(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "-1", "+1", "abc", "1.5", "1e3", "9223372036854775808", " 1"} {
		if _, err := user.ParseID(in); err == nil {
			t.Errorf("ParseID(%q) accepted", in)
		}
	}
}
