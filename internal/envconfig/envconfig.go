// Package envconfig reads a service's settings from the environment once, at
// start, into typed values, and collects one clear error per bad variable so
// that a misconfigured container exits at once with a message naming what to
// fix, instead of failing later on the first request.
//
//	env := envconfig.New(getenv)
//	cfg.Addr = env.String("LISTEN_ADDR", ":8000")
//	cfg.Timeout = env.Duration("SERVICE2_TIMEOUT", 5*time.Second, time.Millisecond, time.Minute)
//	if err := env.Err(); err != nil { ... }
//
// Depends on: the standard library only.
package envconfig

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables through getenv (os.Getenv, or a map in tests).
type Reader struct {
	getenv func(string) string
	errs   []string
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Err returns every problem found, on one line, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %s", strings.Join(r.errs, "; "))
}

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, name+": "+fmt.Sprintf(format, args...))
}

// String returns the variable, or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v := r.getenv(name); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer in [min, max].
func (r *Reader) Int(name string, def, min, max int) int {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, "%q is not an integer", v)
		return def
	}
	if n < min || n > max {
		r.fail(name, "%d is out of range [%d, %d]", n, min, max)
		return def
	}
	return n
}

// Duration returns the variable as a Go duration ("250ms", "5s") in [min, max].
func (r *Reader) Duration(name string, def, min, max time.Duration) time.Duration {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "%q is not a duration (examples: 250ms, 5s, 1m)", v)
		return def
	}
	if d < min || d > max {
		r.fail(name, "%s is out of range [%s, %s]", d, min, max)
		return def
	}
	return d
}

// HostPort returns the variable as a host:port address (host may be empty).
func (r *Reader) HostPort(name, def string) string {
	v := r.String(name, def)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(name, "%q is not host:port", v)
		return def
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		r.fail(name, "%q has no valid port", v)
		return def
	}
	return v
}

// URL returns the variable as an absolute http or https URL.
func (r *Reader) URL(name, def string) *url.URL {
	v := r.String(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "%q is not an absolute http(s) URL", v)
		u, _ = url.Parse(def)
	}
	return u
}

// OneOf returns the variable when it is one of allowed.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := r.String(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

// Check records err, from parsing the variable name by other means, when it
// is not nil.
func (r *Reader) Check(name string, err error) {
	if err != nil {
		r.fail(name, "%v", err)
	}
}

// Float returns the variable as a number in [min, max].
func (r *Reader) Float(name string, def, min, max float64) float64 {
	v := r.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.fail(name, "%q is not a number", v)
		return def
	}
	if f < min || f > max {
		r.fail(name, "%g is out of range [%g, %g]", f, min, max)
		return def
	}
	return f
}
