package devstack

import (
	"os"
	"path/filepath"

	"github.com/failready/failready/devstack/lokidoor"
)

// LokiConfigFile is Loki's config in compose; the stand-in reads its index
// labels.
const LokiConfigFile = "deploy/loki/config.yaml"

// startLoki serves the stand-in on Loki.Addr, with the index labels of
// compose's Loki config, keeping the last 200 000 records (about 200 MiB at
// most); the services' output is kept as container logs for the collector
// to read.
func (s *Stack) startLoki() error {
	cfg, err := os.ReadFile(filepath.Join(s.opts.RepoRoot, LokiConfigFile))
	if err != nil {
		return err
	}
	indexed, err := lokidoor.IndexLabels(cfg)
	if err != nil {
		return err
	}
	l, err := lokidoor.Listen(s.opts.Loki.Addr, indexed, 200_000)
	if err != nil {
		return err
	}
	s.Loki = l
	if s.opts.ContainerLogs == "" {
		s.opts.ContainerLogs = filepath.Join(s.opts.WorkDir, "containers")
	}
	return nil
}
