//go:build e2e

package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/failready/failready/internal/devstack"
	"github.com/failready/failready/internal/devstack/devstacktest"
)

var service1URL = regexp.MustCompile(`^\s+service1\s+(http://\S+)/`)

// TestMakeLocal runs cmd/local (what `make local` runs) as a user would: it
// prints the URLs, serves them, and stops everything on Ctrl-C (SIGINT).
func TestMakeLocal(t *testing.T) {
	if !devstack.MariaDBAvailable() && os.Getenv("MYSQL_TEST_DSN") == "" {
		devstacktest.Missing(t, "neither mariadbd nor MYSQL_TEST_DSN")
	}
	bin := filepath.Join(t.TempDir(), "local")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/local").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	cmd := exec.Command(bin, "-service1", "127.0.0.1:0", "-service2", "127.0.0.1:0", "-quiet")
	cmd.Dir = repoRoot
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := service1URL.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(90 * time.Second):
		t.Fatal("cmd/local printed no service1 URL within 90s")
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !regexp.MustCompile(`"first_name":"joe"`).Match(body) {
		t.Fatalf("GET / through make local: %d %s", resp.StatusCode, body)
	}

	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cmd/local after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cmd/local did not stop within 30s of Ctrl-C")
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Fatal("service1 still answers after cmd/local stopped")
	}
}
