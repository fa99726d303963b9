//go:build e2e

package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileCrossCompiles runs the Dockerfile's own build command as
// `docker buildx build --platform linux/arm64` would on an amd64 builder
// (TARGETOS/TARGETARCH set, no emulation), and checks that every binary the
// images copy comes out for arm64. Docker cannot run here; the command can.
func TestDockerfileCrossCompiles(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(CGO_ENABLED=0 GOOS=\$TARGETOS GOARCH=\$TARGETARCH go build .* -o )/out/ (.*)$`).FindStringSubmatch(string(df))
	if m == nil {
		t.Fatal("no cross-compiling go build in the Dockerfile")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", "-c", m[1]+out+"/ "+m[2])
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH=arm64", "VERSION=e2e")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	for _, pkg := range strings.Fields(m[2]) {
		f, err := elf.Open(filepath.Join(out, filepath.Base(pkg)))
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s built for %s, want arm64", pkg, f.Machine)
		}
		f.Close()
	}
}
