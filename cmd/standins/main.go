// Command standins builds, on a machine with a Docker engine and no image
// registry, an image for every third-party image docker-compose.yml names,
// under the same name and tag, so that the compose file runs unchanged
// (make images; the compose smoke runs on them). Each is made from the same
// pinned program the native stack builds (the tool cache), placed where the
// upstream image has it, with what deploy/images/images.yaml says that image
// has: its entrypoint, default command, user, working directory, and a shell
// and wget only when it has them (busybox, from Debian's busybox-static). A
// stand-in that had a wget its upstream image lacks would hide a healthcheck
// that cannot run there. The MySQL stand-in is Debian's MariaDB on a
// debootstrap root with an entrypoint that keeps the official image's init
// contract. Every stand-in carries the label org.failready.standin, saying
// what it is. It also makes the golang image the Dockerfile's build stage
// starts from, out of this machine's Go.
//
//	go run ./cmd/standins -debian ROOTFS.tar [-only NAME,...] [-print]
//
// Loki and Grafana are AGPL and never built here: the smoke runs the
// project's Loki door in Loki's place and leaves Grafana out.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/failready/failready/devstack/imagetable"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "standins:", err)
		os.Exit(1)
	}
}

// Label is the label every stand-in carries: what it is, and from what.
const Label = "org.failready.standin"

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fl := flag.NewFlagSet("standins", flag.ContinueOnError)
	debian := fl.String("debian", "", "a debootstrap root filesystem as a tar (with mariadb-server), for the MySQL stand-in")
	only := fl.String("only", "", "build only these images (comma-separated names, e.g. mysql,nats)")
	printOnly := fl.Bool("print", false, "print each image's docker import changes and files, build nothing")
	repo := fl.String("repo", ".", "the repository's root")
	if err := fl.Parse(args); err != nil {
		return err
	}
	table, err := imagetable.Load(filepath.Join(*repo, "deploy/images/images.yaml"))
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range strings.FieldsFunc(*only, func(r rune) bool { return r == ',' }) {
		want[n] = true
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil && !*printOnly {
		return errors.New("busybox not found: install Debian's busybox-static (make images does)")
	}
	// The golang image is this machine's Go: it must be the version the
	// Dockerfile's build stage names.
	if df, err := os.ReadFile(filepath.Join(*repo, "Dockerfile")); err == nil {
		if m := regexp.MustCompile(`(?m)^FROM .*\bgolang:(\S+)`).FindSubmatch(df); m != nil && string(m[1]) != golangImage().Image[len("golang:"):] {
			return fmt.Errorf("the Dockerfile builds FROM golang:%s, and this machine's Go is %s: run make images with that Go", m[1], runtime.Version())
		}
	}
	for _, img := range append(table.Images, golangImage()) {
		if img.Standin.Door || img.Standin.None {
			continue
		}
		if len(want) > 0 && !want[img.Name()] {
			continue
		}
		b := &builder{img: img, repo: *repo, getenv: getenv, busybox: busybox, debian: *debian}
		start := time.Now()
		if *printOnly {
			fmt.Fprintf(stdout, "%s\n  %s\n", img.Image, strings.Join(b.changes(), "\n  "))
			continue
		}
		if err := b.build(ctx); err != nil {
			return fmt.Errorf("%s: %w", img.Image, err)
		}
		fmt.Fprintf(stdout, "built %s (stand-in) in %.1f s\n", img.Image, time.Since(start).Seconds())
	}
	return nil
}

// golangImage is the Dockerfile's build stage base: a shell (busybox) and
// this machine's Go at /usr/local/go, as the official image has it.
func golangImage() imagetable.Image {
	v := strings.TrimPrefix(runtime.Version(), "go")
	return imagetable.Image{
		Image:      "golang:" + v,
		Source:     "this machine's Go " + v + " (GOROOT), Debian's busybox-static, the host's CA certificates",
		Entrypoint: []string{},
		Cmd:        []string{"sh"},
		User:       "root",
		Workdir:    "/go",
		Shell:      true,
		Env:        []string{"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOPATH=/go", "GOLANG_VERSION=" + v},
		Standin:    imagetable.Standin{Busybox: true, GOROOT: true},
	}
}

type builder struct {
	img     imagetable.Image
	repo    string
	getenv  func(string) string
	busybox string
	debian  string
}

// changes are docker import's --change lines: what the upstream image's
// Dockerfile sets.
func (b *builder) changes() []string {
	img := b.img
	js := func(v []string) string {
		if v == nil {
			v = []string{}
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	env := img.Env
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	}
	c := []string{
		"ENTRYPOINT " + js(img.Entrypoint),
		"CMD " + js(img.Cmd),
		"WORKDIR " + img.Workdir,
		"LABEL " + Label + "=" + strconvQuote("stand-in for "+img.Image+", built here by cmd/standins: "+img.StandinWhat()),
	}
	for _, e := range env {
		c = append(c, "ENV "+e)
	}
	if img.User != "" && img.User != "root" {
		c = append(c, "USER "+img.User)
	}
	return c
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func (b *builder) build(ctx context.Context) error {
	args := []string{"import"}
	for _, c := range b.changes() {
		args = append(args, "--change", c)
	}
	args = append(args, "-", b.img.Image)
	old, _ := exec.CommandContext(ctx, "docker", "image", "inspect", "-f", "{{.Id}}", b.img.Image).Output()
	cmd := exec.CommandContext(ctx, "docker", args...)
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := b.writeRoot(pw)
	pw.CloseWithError(werr)
	err := cmd.Wait()
	if werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("docker import: %v: %s", err, out.Bytes())
	}
	// The image this one replaces, untagged now: removed, unless a
	// container still uses it.
	if id := strings.TrimSpace(string(old)); id != "" && !strings.Contains(out.String(), strings.TrimPrefix(id, "sha256:")) {
		_ = exec.CommandContext(ctx, "docker", "rmi", id).Run()
	}
	return nil
}

// writeRoot writes the image's root filesystem as a tar.
func (b *builder) writeRoot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	r := &root{tw: tar.NewWriter(bw), seen: map[string]bool{}}
	img := b.img
	if img.Standin.From == "debian" {
		if b.debian == "" {
			return errors.New("needs -debian ROOTFS.tar (make images makes one with debootstrap)")
		}
		if err := r.copyTar(b.debian); err != nil {
			return err
		}
	} else {
		for _, d := range []string{"/etc", "/tmp", "/root"} {
			mode := int64(0o755)
			if d == "/tmp" {
				mode = 0o1777
			}
			r.dir(d, mode, 0)
		}
		// Users: root, nobody, and the image's own numeric user.
		r.file("/etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"))
		r.file("/etc/group", 0o644, 0, []byte("root:x:0:\nnogroup:x:65534:\n"))
		if certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
			r.file("/etc/ssl/certs/ca-certificates.crt", 0o644, 0, certs)
		}
	}
	if img.Standin.Busybox {
		bb, err := os.ReadFile(b.busybox)
		if err != nil {
			return err
		}
		r.file("/bin/busybox", 0o755, 0, bb)
		applets, err := exec.Command(b.busybox, "--list-full").Output()
		if err != nil {
			return fmt.Errorf("busybox --list-full: %w", err)
		}
		for _, a := range strings.Fields(string(applets)) {
			r.symlink("/"+a, "/bin/busybox")
		}
	}
	if img.Standin.GOROOT {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w", err)
		}
		if err := r.copyDir(strings.TrimSpace(string(out)), "/usr/local/go"); err != nil {
			return err
		}
		r.dir("/go", 0o777, 0)
		r.dir("/go/bin", 0o777, 0)
	}
	names := make([]string, 0, len(img.Standin.Files))
	for dst := range img.Standin.Files {
		names = append(names, dst)
	}
	slices.Sort(names)
	for _, dst := range names {
		src := img.Standin.Files[dst]
		file := src
		if v := b.getenv(src); v != "" {
			file = v
		} else if strings.ToUpper(src) == src {
			return fmt.Errorf("%s: $%s is not set (make images sets it to the tool cache's binary)", dst, src)
		} else {
			file = filepath.Join(b.repo, src)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", dst, err)
		}
		if interp := interpreter(data); interp != "" && img.Standin.From != "debian" {
			return fmt.Errorf("%s (%s) is dynamically linked (it needs %s), and the image has no C library: build it with CGO_ENABLED=0, as its upstream image's is", dst, file, interp)
		}
		r.file(dst, 0o755, 0, data)
	}
	// The data paths exist and belong to the image's user, as the upstream
	// Dockerfiles make them.
	uid := img.UID()
	for _, d := range img.Data {
		if d == "/tmp" {
			continue
		}
		r.dir(d, 0o775, uid)
	}
	if r.err != nil {
		return r.err
	}
	if err := r.tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// root writes a tar once per path (the first writer wins) with every
// parent folder before it.
type root struct {
	tw   *tar.Writer
	seen map[string]bool
	err  error
}

func (r *root) parents(p string) {
	if d := path.Dir(p); d != "/" && !r.seen[d] {
		r.dir(d, 0o755, 0)
	}
}

func (r *root) header(h *tar.Header, data []byte) {
	name := strings.TrimPrefix(path.Clean(h.Name), "/")
	if r.err != nil || r.seen["/"+name] {
		return
	}
	r.parents("/" + name)
	r.seen["/"+name] = true
	h.Name = name
	h.ModTime = time.Unix(0, 0)
	if r.err = r.tw.WriteHeader(h); r.err == nil && data != nil {
		_, r.err = r.tw.Write(data)
	}
}

func (r *root) dir(p string, mode int64, uid int) {
	r.header(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: mode, Uid: uid, Gid: uid}, nil)
}

func (r *root) file(p string, mode int64, uid int, data []byte) {
	r.header(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(data))}, data)
}

func (r *root) symlink(p, target string) {
	r.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777}, nil)
}

// copyDir copies a host folder into the image (regular files, folders,
// symlinks), owned by root.
func (r *root) copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			r.dir(name, 0o755, 0)
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			r.symlink(name, t)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r.file(name, int64(info.Mode().Perm()), 0, data)
		}
		return r.err
	})
}

// copyTar copies a root filesystem tar (debootstrap's, as made by make
// images) entry by entry; the files the row adds come after it and win.
func (r *root) copyTar(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		name := "/" + strings.TrimPrefix(path.Clean(h.Name), "./")
		if name == "/." || name == "/" {
			continue
		}
		h.Name = name
		var data []byte
		if h.Typeflag == tar.TypeReg {
			if data, err = io.ReadAll(tr); err != nil {
				return err
			}
		}
		// Hard links point at a file written before them.
		if h.Typeflag == tar.TypeLink {
			h.Linkname = strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(h.Linkname, "./")), "/")
		}
		name = strings.TrimPrefix(path.Clean(h.Name), "/")
		if r.err != nil {
			return r.err
		}
		if r.seen["/"+name] {
			continue
		}
		r.seen["/"+name] = true
		h.Name = name
		if r.err = r.tw.WriteHeader(h); r.err == nil && data != nil {
			_, r.err = r.tw.Write(data)
		}
	}
	return r.err
}

// interpreter is an ELF executable's dynamic loader ("" for a static one,
// or for a script).
func interpreter(data []byte) string {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				return strings.TrimRight(string(b), "\x00")
			}
			return "a loader"
		}
	}
	return ""
}
