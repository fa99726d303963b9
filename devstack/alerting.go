// Alerting in the dev stack: alertlog (the webhook receiver, cmd/alertlog)
// and Alertmanager with the file compose mounts, its webhooks pointed at
// alertlog on loopback.

package devstack

import (
	"context"
	"os"
	"path/filepath"
)

// startAlerting builds and starts alertlog, then Alertmanager, on the
// addresses the options give or free loopback ports.
func (s *Stack) startAlerting(ctx context.Context) error {
	logAddr, err := addrOrFree(s.opts.Alerting.AlertLogAddr)
	if err != nil {
		return err
	}
	amAddr, err := addrOrFree(s.opts.Alerting.AlertmanagerAddr)
	if err != nil {
		return err
	}
	bin := s.bins["cmd/alertlog"]
	if bin == "" {
		built, err := Build(ctx, s.opts.RepoRoot, filepath.Join(s.opts.WorkDir, "bin"), s.opts.Version, "cmd/alertlog")
		if err != nil {
			return err
		}
		bin = built["cmd/alertlog"]
	}
	alertlog, err := StartTool(ctx, "alertlog", bin, []string{"-addr", logAddr}, logAddr, "/healthz", s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.AlertLog = alertlog
	s.mu.Unlock()

	src, err := os.ReadFile(filepath.Join(s.opts.RepoRoot, AlertmanagerConfigFile))
	if err != nil {
		return err
	}
	cfg, err := LoopbackAlertmanagerConfig(string(src), logAddr)
	if err != nil {
		return err
	}
	dir, cfgPath, err := s.writeConfig("alertmanager", "alertmanager.yml", []byte(cfg))
	if err != nil {
		return err
	}
	am, err := StartTool(ctx, "alertmanager", s.opts.AlertmanagerBin, []string{
		"--config.file=" + cfgPath,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + amAddr,
		"--cluster.listen-address=", // one instance: no gossip port
		"--log.level=warn",
	}, amAddr, "/-/ready", s.output())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.Alertmanager = am
	s.mu.Unlock()
	return nil
}
