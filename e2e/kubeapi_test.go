//go:build e2e

package e2e

// The kube-apiserver harness: a real kube-apiserver with its own etcd on
// loopback, kubectl pointed at it, and what the Kubernetes tests render and
// apply through it (kustomize, KEDA's release, manifests split and joined).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/failready/failready/devstack"
	"github.com/failready/failready/devstack/devstacktest"
	"github.com/failready/failready/internal/logging/logtest"
)

// kubeAPI is a real kube-apiserver on loopback, with its own etcd, and a
// kubectl pointed at it.
type kubeAPI struct {
	kubectl, kubeconfig string
}

// startKubeAPI starts etcd and kube-apiserver (the pinned builds of make
// k8s-tools) in a temporary folder; both stop with the test. An API server
// with no controllers, no scheduler and no nodes: what it gives is its
// admission and validation, which is what a server-side dry run asks of it.
func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	etcdBin, apiserverBin, kubectlBin := toolBin(t, "ETCD_BIN"), toolBin(t, "KUBE_APISERVER_BIN"), toolBin(t, "KUBECTL_BIN")
	dir := t.TempDir()
	var ports [3]string
	for i := range ports {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = strconv.Itoa(p)
	}
	client, peer, secure := ports[0], ports[1], ports[2]

	etcd := startKubeProcess(t, dir, "etcd", etcdBin,
		"--name=failready", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:"+client, "--advertise-client-urls=http://127.0.0.1:"+client,
		"--listen-peer-urls=http://127.0.0.1:"+peer, "--initial-advertise-peer-urls=http://127.0.0.1:"+peer,
		"--initial-cluster=failready=http://127.0.0.1:"+peer, "--log-level=warn")
	if _, ok := poll(30*time.Second, 100*time.Millisecond, func() bool {
		r, err := http.Get("http://127.0.0.1:" + client + "/health")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	}); !ok {
		t.Fatalf("etcd did not become healthy within 30 s:\n%s", etcd.String())
	}

	// The service-account signing key (the API server refuses to start
	// without one) and the one token it accepts: an admin's.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	writeFile(t, filepath.Join(dir, "tokens.csv"), []byte(token+",failready-admin,failready-admin,system:masters\n"))

	api := startKubeProcess(t, dir, "kube-apiserver", apiserverBin,
		"--etcd-servers=http://127.0.0.1:"+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+secure,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		// Nothing runs the endpoints of the default kubernetes Service on
		// loopback.
		"--endpoint-reconciler-type=none")
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, ok := poll(2*time.Minute, 250*time.Millisecond, func() bool {
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+secure+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := insecure.Do(req)
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	}); !ok {
		t.Fatalf("kube-apiserver was not ready within 2 minutes:\n%s", api.String())
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:%s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, secure, token)))
	return &kubeAPI{kubectl: kubectlBin, kubeconfig: kubeconfig}
}

// run runs kubectl with stdin, and returns its stdout and stderr
// interleaved, as a terminal would show them.
func (k *kubeAPI) run(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustRun is run, failing the test on an error.
func (k *kubeAPI) mustRun(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := k.run(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// dryRun is make k8s-up's apply, as a server-side dry run with strict field
// validation: every field known to the schema, every type right, every
// required field there, and each object through the API server's
// admission.
var dryRun = []string{"apply", "--server-side", "--field-manager=failready", "--dry-run=server", "--validate=strict", "-f", "-"}

// kubeProcess is a program of the test's API server, its output kept.
type kubeProcess struct {
	name string
	out  *logtest.Buffer // stdout and stderr
}

func (p *kubeProcess) String() string {
	s := p.out.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return p.name + ":\n" + s
}

func startKubeProcess(t *testing.T, dir, name, bin string, args ...string) *kubeProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	p := &kubeProcess{name: name, out: &logtest.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	dieWithTheTest(cmd)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		cancel()
		<-done
		if t.Failed() {
			t.Log(p.String())
		}
	})
	return p
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// kustomize renders a kustomization the way make k8s-up does.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := exec.Command(toolBin(t, "KUSTOMIZE_BIN"), "build", "--load-restrictor=LoadRestrictionsNone", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr)
	}
	return out
}

// kedaRelease renders KEDA's release manifest from its Go module at
// KEDA_VERSION, as KEDA's own release does (config/default, the images at
// the version): what make k8s-up applies from KEDA's release page.
func kedaRelease(t *testing.T) []byte {
	t.Helper()
	v := os.Getenv("KEDA_VERSION")
	if v == "" {
		devstacktest.Missing(t, "KEDA_VERSION is not set (run make k8s-validate)")
	}
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/kedacore/keda/v2@"+v).Output()
	if err != nil {
		t.Fatalf("go mod download KEDA %s: %v", v, err)
	}
	m := regexp.MustCompile(`"Dir": "([^"]+)"`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("go mod download KEDA %s: no Dir in %s", v, out)
	}
	// kustomize takes no absolute path of a base: a copy beside.
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "keda"), os.DirFS(filepath.Join(string(m[1]), "config"))); err != nil {
		t.Fatal(err)
	}
	tag := strings.TrimPrefix(v, "v")
	writeFile(t, filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf(`resources:
  - keda/default
images:
  - name: ghcr.io/kedacore/keda
    newTag: "%[1]s"
  - name: ghcr.io/kedacore/keda-metrics-apiserver
    newTag: "%[1]s"
  - name: ghcr.io/kedacore/keda-admission-webhooks
    newTag: "%[1]s"
`, tag)))
	return kustomize(t, dir)
}

// manifest is one object of a rendered stream.
type manifest struct {
	Kind, Name string
	doc        map[string]any
}

func (m manifest) yaml(t *testing.T) []byte {
	t.Helper()
	b, err := yaml.Marshal(m.doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitManifests parses a rendered stream into its objects.
func splitManifests(t *testing.T, b []byte) []manifest {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var ms []manifest
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				return ms
			}
			t.Fatal(err)
		}
		if doc == nil {
			continue
		}
		meta, _ := doc["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		kind, _ := doc["kind"].(string)
		ms = append(ms, manifest{Kind: kind, Name: name, doc: doc})
	}
}

// join writes objects back as one stream.
func join(t *testing.T, ms []manifest) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, m := range ms {
		b.WriteString("---\n")
		b.Write(m.yaml(t))
	}
	return b.Bytes()
}

// kinds picks the objects of some kinds, or of all the others.
func kinds(ms []manifest, keep bool, names ...string) []manifest {
	var out []manifest
	for _, m := range ms {
		in := false
		for _, n := range names {
			in = in || m.Kind == n
		}
		if in == keep {
			out = append(out, m)
		}
	}
	return out
}
