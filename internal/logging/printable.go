package logging

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values a client chose (a path, a header, an error that quotes them) may
// carry characters a reader of the log cannot see: Unicode format characters
// such as U+202E RIGHT-TO-LEFT OVERRIDE, which makes a terminal show
// "/files/\u202Etxt.exe" as "/files/exe.txt", or zero-width ones that hide a
// difference, and C1 control characters. slog's JSON handler escapes ASCII
// controls, not these. Every line's string values (and errors) are written
// with them as visible \uXXXX text instead; a value with nothing to escape
// (ASCII, or ordinary non-ASCII such as "René") is written as it is and costs
// one scan.

// hidden reports a rune that must not reach a log raw.
func hidden(r rune) bool {
	return unicode.Is(unicode.Cf, r) || // format: bidi controls, zero-width, BOM, ...
		(r >= 0x80 && r <= 0x9f) || // C1 controls
		r == '\u2028' || r == '\u2029' // line and paragraph separators
}

// needsEscape reports whether s holds a hidden rune.
func needsEscape(s string) bool {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++ // ASCII: nothing slog does not already escape
	}
	return i < len(s) && strings.IndexFunc(s[i:], hidden) >= 0
}

// printable returns s with its hidden runes written as \uXXXX.
func printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if hidden(r) {
			fmt.Fprintf(&b, `\u%04X`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printableAttr returns a with its string (and error) values made printable,
// and whether anything changed.
func printableAttr(a slog.Attr) (slog.Attr, bool) {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); needsEscape(s) {
			return slog.String(a.Key, printable(s)), true
		}
	case slog.KindGroup:
		attrs := a.Value.Group()
		var out []slog.Attr
		for i, g := range attrs {
			if p, ok := printableAttr(g); ok {
				if out == nil {
					out = append([]slog.Attr{}, attrs...)
				}
				out[i] = p
			}
		}
		if out != nil {
			return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}, true
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok && err != nil {
			if s := err.Error(); needsEscape(s) {
				return slog.String(a.Key, printable(s)), true
			}
		}
	}
	return a, false
}

// printableRecord returns r, or a copy with its message and values made
// printable when any needs it.
func printableRecord(r slog.Record) slog.Record {
	changed := needsEscape(r.Message)
	if !changed {
		r.Attrs(func(a slog.Attr) bool {
			_, changed = printableAttr(a)
			return !changed
		})
	}
	if !changed {
		return r
	}
	out := slog.NewRecord(r.Time, r.Level, printable(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		a, _ = printableAttr(a)
		out.AddAttrs(a)
		return true
	})
	return out
}
