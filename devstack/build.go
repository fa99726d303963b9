// Building the binaries the stack runs, as the Dockerfile builds them
// (static, trimmed paths, no DWARF, the version stamped in), and as make
// local's tools are built, so that a first run compiles the standard
// library once.

package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build compiles the named main packages of repoRoot into dir, stamped with
// version, and returns their paths by name.
func Build(ctx context.Context, repoRoot, dir, version string, names ...string) (map[string]string, error) {
	bins := map[string]string{}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=" + version, "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, "./"+n)
		bins[n] = filepath.Join(dir, filepath.Base(n))
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(names, " "), err, out)
	}
	return bins, nil
}
