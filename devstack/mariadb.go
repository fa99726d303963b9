package devstack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a private mariadbd: its own data directory and port, so that a
// test can stop it and start it again without touching the machine's server.
type MariaDB struct {
	Dir  string
	Port int
	log  io.Writer
	cmd  *exec.Cmd
	// exited is closed when the current mariadbd exits; waitErr is then
	// its exit status.
	exited  chan struct{}
	waitErr error
}

// Exited is closed when the running mariadbd exits.
func (m *MariaDB) Exited() <-chan struct{} { return m.exited }

// Pid is mariadbd's process ID (0 when it is not running).
func (m *MariaDB) Pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// MariaDBAvailable reports whether mariadbd and mariadb-install-db are on
// this machine (PATH or /usr/sbin).
func MariaDBAvailable() bool {
	_, e1 := lookPath("mariadbd")
	_, e2 := lookPath("mariadb-install-db")
	return e1 == nil && e2 == nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found in PATH or /usr/sbin", name)
	}
	return p, nil
}

// StartMariaDB initialises a data directory under dir and starts mariadbd on
// a free loopback port, root without a password.
func StartMariaDB(ctx context.Context, dir string, log io.Writer) (*MariaDB, error) {
	install, err := lookPath("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+dataDir,
		"--user="+currentUser(), "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Dir: dir, Port: port, log: log}
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// Start starts (or restarts) the server on its port and waits until it
// accepts connections.
func (m *MariaDB) Start(ctx context.Context) error {
	bin, err := lookPath("mariadbd")
	if err != nil {
		return err
	}
	m.cmd = exec.Command(bin, "--no-defaults",
		"--datadir="+filepath.Join(m.Dir, "data"),
		"--user="+currentUser(),
		"--bind-address=127.0.0.1",
		"--port="+strconv.Itoa(m.Port),
		"--socket="+filepath.Join(m.Dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(m.Dir, "mysqld.pid"),
		"--skip-log-bin", "--skip-name-resolve",
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
		"--max-connections=500",
	)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	m.exited = exited
	go func(c *exec.Cmd) { m.waitErr = c.Wait(); close(exited) }(m.cmd)

	db, err := sql.Open("mysql", m.RootDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mariadbd exited at start: %v (last ping: %v)", m.waitErr, err)
		default:
		}
		if time.Now().After(deadline) {
			_ = m.Stop()
			return fmt.Errorf("mariadbd not ready after 30s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
func (m *MariaDB) Stop() error {
	if m.cmd == nil || m.cmd.Process == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
	return nil
}

// Addr is the server's host:port.
func (m *MariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

// RootDSN is a DSN for root on database db ("" for none).
func (m *MariaDB) RootDSN(db string) string {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.DBName = "tcp", m.Addr(), "root", db
	c.Timeout = 2 * time.Second
	return c.FormatDSN()
}

// errNoMySQL says neither a private mariadbd nor MYSQL_TEST_DSN is available.
var errNoMySQL = errors.New("no MySQL: install mariadb-server (for a private mariadbd) or set MYSQL_TEST_DSN")
