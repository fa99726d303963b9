package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/failready/failready/devstack/imagetable"
)

// rootOf writes an image's root filesystem, with fake tool-cache binaries
// and a fake busybox, and lists it: path -> header.
func rootOf(t *testing.T, name string) (imagetable.Image, map[string]*tar.Header) {
	t.Helper()
	table, err := imagetable.Load("../../deploy/images/images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var img imagetable.Image
	for _, i := range table.Images {
		if i.Name() == name {
			img = i
		}
	}
	dir := t.TempDir()
	bb := filepath.Join(dir, "busybox")
	if err := os.WriteFile(bb, []byte("#!/bin/sh\nprintf 'bin/sh\\nbin/wget\\nusr/bin/env\\n'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, src := range img.Standin.Files {
		if strings.ToUpper(src) == src {
			f := filepath.Join(dir, src)
			os.WriteFile(f, []byte("binary "+src), 0o755)
			env[src] = f
		}
	}
	b := &builder{img: img, repo: "../..", getenv: func(k string) string { return env[k] }, busybox: bb}
	var buf bytes.Buffer
	if err := b.writeRoot(&buf); err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files["/"+h.Name] = h
	}
	return img, files
}

// TestStandinHasWhatItsRowSays: a busybox image's stand-in has its
// binaries where the upstream image has them, a shell and wget, its data
// folder owned by its user; a scratch image's has its binary and no shell,
// no wget: a healthcheck that would fail upstream fails on the stand-in.
func TestStandinHasWhatItsRowSays(t *testing.T) {
	img, files := rootOf(t, "prometheus")
	for _, want := range []string{"/bin/prometheus", "/bin/promtool", "/bin/busybox", "/bin/sh", "/bin/wget", "/etc/passwd"} {
		if files[want] == nil {
			t.Errorf("prometheus stand-in lacks %s", want)
		}
	}
	if h := files["/prometheus"]; h == nil || h.Uid != 65534 || h.Typeflag != tar.TypeDir {
		t.Errorf("/prometheus: %+v, want a folder of nobody's (%s)", h, img.User)
	}
	_, files = rootOf(t, "opentelemetry-collector-contrib")
	if files["/otelcol-contrib"] == nil {
		t.Error("the collector stand-in lacks /otelcol-contrib")
	}
	for _, not := range []string{"/bin/sh", "/bin/wget", "/bin/busybox"} {
		if files[not] != nil {
			t.Errorf("the collector stand-in has %s, which its scratch image has not", not)
		}
	}
}

// TestStandinChanges: the image's config is its row's: entrypoint, command,
// user, working folder, and the stand-in label.
func TestStandinChanges(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-print", "-repo", "../..", "-only", "prometheus,toxiproxy"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ENTRYPOINT ["/bin/prometheus"]`, `CMD ["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"]`,
		"USER nobody", "WORKDIR /prometheus", "LABEL " + Label + `="stand-in for prom/prometheus:v3.16.0`,
		`ENTRYPOINT ["/toxiproxy"]`, `CMD ["-host=0.0.0.0"]`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

// TestStandinRefusesADynamicBinary: a binary linked against the C library
// cannot run in a scratch or busybox image (exec says "no such file or
// directory", which is its missing loader): refused, with the fix.
func TestStandinRefusesADynamicBinary(t *testing.T) {
	table, err := imagetable.Load("../../deploy/images/images.yaml")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := table.Find("ghcr.io/shopify/toxiproxy:2.12.0")
	// /bin/sh is linked against the C library on every Linux this runs on.
	b := &builder{img: img, repo: "../..", getenv: func(string) string { return "/bin/sh" }}
	err = b.writeRoot(io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a dynamic /bin/sh as /toxiproxy: %v; want a refusal naming CGO_ENABLED=0", err)
	}
}
