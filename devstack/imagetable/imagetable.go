// Package imagetable reads deploy/images/images.yaml: what each third-party
// image of docker-compose.yml ships (entrypoint, command, user, shell and
// tools, config and data paths), read from its upstream Dockerfile, and how
// cmd/standins builds a stand-in for it on a machine with no registry. The
// stackfiles tests hold the compose file against it.
//
// Depends on: gopkg.in/yaml.v3.
package imagetable

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Table is the file.
type Table struct {
	Images []Image `yaml:"images"`
}

// Image is one row.
type Image struct {
	Image      string   `yaml:"image"`
	Source     string   `yaml:"source"`
	Base       string   `yaml:"base"`
	Entrypoint []string `yaml:"entrypoint"`
	Cmd        []string `yaml:"cmd"`
	User       string   `yaml:"user"`
	Workdir    string   `yaml:"workdir"`
	Shell      bool     `yaml:"shell"`
	Tools      []string `yaml:"tools"`
	Files      []string `yaml:"files"`
	Probe      []string `yaml:"probe"`
	Config     []string `yaml:"config"`
	Data       []string `yaml:"data"`
	Env        []string `yaml:"env"`
	Standin    Standin  `yaml:"standin"`
}

// Standin says how cmd/standins builds the image here.
type Standin struct {
	// From "debian": a debootstrap root (the MySQL stand-in).
	From string `yaml:"from"`
	// Busybox: Debian's busybox-static and every applet, as busybox-based
	// images have.
	Busybox bool `yaml:"busybox"`
	// Files: path in the image -> a Makefile variable naming a tool-cache
	// binary (upper case), or a file of this repository.
	Files map[string]string `yaml:"files"`
	// Door: Loki's place, taken by the project's Loki door in the smoke.
	Door bool `yaml:"door"`
	// None: not built here at all.
	None bool `yaml:"none"`
	// GOROOT: this machine's Go at /usr/local/go (the golang image).
	GOROOT bool `yaml:"-"`
}

// Load reads and checks the table.
func Load(file string) (*Table, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var t Table
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, img := range t.Images {
		switch {
		case img.Image == "" || !strings.Contains(img.Image, ":"):
			return nil, fmt.Errorf("%s: an image without a tag: %q", file, img.Image)
		case img.Source == "":
			return nil, fmt.Errorf("%s: %s: no upstream source", file, img.Image)
		case img.Workdir == "":
			return nil, fmt.Errorf("%s: %s: no workdir", file, img.Image)
		case img.Shell != slices.Contains(img.Tools, "sh"):
			return nil, fmt.Errorf("%s: %s: shell is %v but its tools are %v", file, img.Image, img.Shell, img.Tools)
		}
	}
	return &t, nil
}

// Find returns the row of an image reference.
func (t *Table) Find(ref string) (Image, bool) {
	for _, img := range t.Images {
		if img.Image == ref {
			return img, true
		}
	}
	return Image{}, false
}

// Name is the image's short name: mysql for mysql:8.4.7, prometheus for
// prom/prometheus:v3.16.0.
func (img Image) Name() string {
	n := img.Image[:strings.LastIndex(img.Image, ":")]
	return n[strings.LastIndex(n, "/")+1:]
}

// Has reports whether the image can run prog: a tool on its PATH, or an
// executable at that absolute path.
func (img Image) Has(prog string) bool {
	if strings.HasPrefix(prog, "/") {
		return slices.Contains(img.Files, prog) || (len(img.Probe) > 0 && img.Probe[0] == prog) ||
			(img.Shell && (prog == "/bin/sh" || strings.HasPrefix(prog, "/bin/") && slices.Contains(img.Tools, strings.TrimPrefix(prog, "/bin/"))))
	}
	return slices.Contains(img.Tools, prog)
}

// UID is the numeric user the image runs as (nobody is 65534).
func (img Image) UID() int {
	u, _, _ := strings.Cut(img.User, ":")
	switch u {
	case "", "root":
		return 0
	case "nobody":
		return 65534
	}
	n, _ := strconv.Atoi(u)
	return n
}

// StandinWhat says, for the stand-in's label, what it is made of.
func (img Image) StandinWhat() string {
	var parts []string
	if img.Standin.From == "debian" {
		parts = append(parts, "Debian's MariaDB on a debootstrap root")
	}
	for dst, src := range img.Standin.Files {
		parts = append(parts, dst+" from "+src)
	}
	slices.Sort(parts)
	if img.Standin.Busybox {
		parts = append(parts, "Debian's busybox-static")
	}
	if img.Standin.GOROOT {
		parts = append(parts, "this machine's Go")
	}
	return strings.Join(parts, ", ")
}
