package lokidoor

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Query is a LogQL log query of the subset the door answers:
//
//	{name="v", name!="v", name=~"re", name!~"re"}   the stream selector
//	|= "text"  != "text"  |~ "re"  !~ "re"          line filters
//	| name="v" | name=~"re" | status >= 500, b!="x"  label filters (labels and structured metadata)
type Query struct {
	selector []matcher
	stages   []func(e Entry) bool
}

type matcher struct {
	name, op, value string
	re              *regexp.Regexp
}

func (m matcher) match(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default: // "!~"
		return !m.re.MatchString(v)
	}
}

// Match reports whether an entry is in the query's answer.
func (q *Query) Match(e Entry) bool {
	for _, m := range q.selector {
		if !m.match(e.Labels[m.name]) {
			return false
		}
	}
	for _, s := range q.stages {
		if !s(e) {
			return false
		}
	}
	return true
}

// ParseQuery parses a log query of the subset Query describes; anything
// else (a metric query, a parser stage) is an error that says so.
func ParseQuery(s string) (*Query, error) {
	p := &parser{s: s}
	q := &Query{}
	p.space()
	if !p.eat("{") {
		return nil, fmt.Errorf("want a stream selector {...} at %q: the stand-in for Loki answers log queries only (metric queries need Loki: make up)", trimmed(p.rest()))
	}
	for {
		m, err := p.matcher(true)
		if err != nil {
			return nil, err
		}
		q.selector = append(q.selector, m.matcher)
		p.space()
		if p.eat(",") {
			continue
		}
		if p.eat("}") {
			break
		}
		return nil, fmt.Errorf("want , or } at %q", trimmed(p.rest()))
	}
	nonEmpty := false
	for _, m := range q.selector {
		nonEmpty = nonEmpty || (m.op == "=" && m.value != "") || (m.op == "=~" && !m.re.MatchString(""))
	}
	if !nonEmpty { // Loki's own rule
		return nil, errors.New("queries require at least one regexp or equality matcher that does not have an empty-compatible value")
	}
	for {
		p.space()
		if p.done() {
			return q, nil
		}
		switch {
		case p.eat("|="), p.eat("!="), p.eat("|~"), p.eat("!~"):
			op := p.s[p.i-2 : p.i]
			p.space()
			text, err := p.str()
			if err != nil {
				return nil, err
			}
			f, err := lineFilter(op, text)
			if err != nil {
				return nil, err
			}
			q.stages = append(q.stages, f)
		case p.eat("|"):
			for {
				m, err := p.matcher(false)
				if err != nil {
					return nil, err
				}
				q.stages = append(q.stages, m.entry)
				p.space()
				if !p.eat(",") && !p.word("and") {
					break
				}
			}
		default:
			return nil, fmt.Errorf("unexpected %q", trimmed(p.rest()))
		}
	}
}

func lineFilter(op, text string) (func(Entry) bool, error) {
	switch op {
	case "|=":
		return func(e Entry) bool { return strings.Contains(e.Line, text) }, nil
	case "!=":
		return func(e Entry) bool { return !strings.Contains(e.Line, text) }, nil
	}
	re, err := regexp.Compile(text)
	if err != nil {
		return nil, err
	}
	if op == "|~" {
		return func(e Entry) bool { return re.MatchString(e.Line) }, nil
	}
	return func(e Entry) bool { return !re.MatchString(e.Line) }, nil
}

// labelFilter is a matcher on a label or structured-metadata value, or a
// numeric comparison.
type labelFilter struct {
	matcher
	num    float64
	numCmp bool
}

func (f labelFilter) entry(e Entry) bool {
	v, ok := e.Labels[f.name]
	if !ok {
		v = e.Metadata[f.name]
	}
	if !f.numCmp {
		return f.match(v)
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return false
	}
	switch f.op {
	case ">":
		return x > f.num
	case ">=":
		return x >= f.num
	case "<":
		return x < f.num
	case "<=":
		return x <= f.num
	case "==", "=":
		return x == f.num
	default: // "!="
		return x != f.num
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) rest() string { return p.s[p.i:] }
func (p *parser) done() bool   { return p.i >= len(p.s) }
func (p *parser) space() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

func (p *parser) eat(tok string) bool {
	if strings.HasPrefix(p.rest(), tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *parser) word(w string) bool {
	r := p.rest()
	if strings.HasPrefix(r, w) && len(r) > len(w) && unicode.IsSpace(rune(r[len(w)])) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *parser) ident() string {
	p.space()
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] == '_' || unicode.IsLetter(rune(p.s[p.i])) || (p.i > start && unicode.IsDigit(rune(p.s[p.i])))) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *parser) str() (string, error) {
	p.space()
	r := p.rest()
	if strings.HasPrefix(r, "`") {
		end := strings.IndexByte(r[1:], '`')
		if end < 0 {
			return "", errors.New("unterminated `string`")
		}
		p.i += end + 2
		return r[1 : end+1], nil
	}
	if !strings.HasPrefix(r, `"`) {
		return "", fmt.Errorf("want a string at %q", trimmed(r))
	}
	for j := 1; j < len(r); j++ {
		switch r[j] {
		case '\\':
			j++
		case '"':
			v, err := strconv.Unquote(r[:j+1])
			if err != nil {
				return "", err
			}
			p.i += j + 1
			return v, nil
		}
	}
	return "", errors.New(`unterminated "string"`)
}

// matcher reads name op value; in a selector the value is a string, in a
// label filter it may be a number for a numeric comparison.
func (p *parser) matcher(selector bool) (labelFilter, error) {
	name := p.ident()
	if name == "" {
		return labelFilter{}, fmt.Errorf("want a label name at %q", trimmed(p.rest()))
	}
	p.space()
	var op string
	for _, o := range []string{"=~", "!~", "!=", "==", ">=", "<=", "=", ">", "<"} {
		if p.eat(o) {
			op = o
			break
		}
	}
	if op == "" {
		return labelFilter{}, fmt.Errorf("%s: want an operator (the stand-in for Loki has no parser stages such as json or logfmt: the pipeline has parsed the lines already)", name)
	}
	p.space()
	if !selector && !strings.HasPrefix(p.rest(), `"`) && !strings.HasPrefix(p.rest(), "`") {
		start := p.i
		for p.i < len(p.s) && strings.ContainsRune("0123456789.-+e", rune(p.s[p.i])) {
			p.i++
		}
		n, err := strconv.ParseFloat(p.s[start:p.i], 64)
		if err != nil || op == "=~" || op == "!~" {
			return labelFilter{}, fmt.Errorf("%s %s: want a string or a number at %q", name, op, trimmed(p.s[start:]))
		}
		return labelFilter{matcher: matcher{name: name, op: op}, num: n, numCmp: true}, nil
	}
	if selector && (op == "==" || op == ">=" || op == "<=" || op == ">" || op == "<") {
		return labelFilter{}, fmt.Errorf("%s %s: a stream selector takes =, !=, =~, !~", name, op)
	}
	v, err := p.str()
	if err != nil {
		return labelFilter{}, err
	}
	m := matcher{name: name, op: op, value: v}
	if op == "=~" || op == "!~" {
		if m.re, err = regexp.Compile("^(?:" + v + ")$"); err != nil {
			return labelFilter{}, err
		}
	}
	if op == "==" {
		m.op = "="
	}
	if !selector && (op == ">" || op == "<" || op == ">=" || op == "<=") {
		return labelFilter{}, fmt.Errorf("%s %s: compare with a number, not a string", name, op)
	}
	return labelFilter{matcher: m}, nil
}
