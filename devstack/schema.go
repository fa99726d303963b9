package devstack

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/go-sql-driver/mysql"
)

// Database is a database prepared as the compose stack's mysql init does it:
// the schema and seed from deploy/mysql/init/01-schema.sql and the
// least-privileged application user from 02-app-user.sh.
type Database struct {
	Addr     string // host:port
	Name     string
	User     string // the application user (service2's)
	Password string
	// WorkerUser may only read and insert welcome_messages.
	WorkerUser, WorkerPassword string

	rootDSN string // root, no database selected
}

// SchemaFile and AppUserScript are the files compose mounts into MySQL.
const (
	SchemaFile    = "deploy/mysql/init/01-schema.sql"
	AppUserScript = "deploy/mysql/init/02-app-user.sh"
)

var safeName = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// PrepareDatabase creates database name (dropping an old one) through rootDSN,
// applies the schema file and runs the app-user script, both from repoRoot.
// An empty name picks a unique one, and so does an empty user.
func PrepareDatabase(ctx context.Context, repoRoot, rootDSN, name, appUser string) (*Database, error) {
	cfg, err := mysql.ParseDSN(rootDSN)
	if err != nil {
		return nil, fmt.Errorf("root DSN: %w", err)
	}
	suffix := randomHex(4)
	if name == "" {
		name = "failready_" + suffix
	}
	if appUser == "" {
		appUser = "fr_app_" + suffix
	}
	if !safeName.MatchString(name) || !safeName.MatchString(appUser) {
		return nil, fmt.Errorf("unsafe database or user name %q, %q", name, appUser)
	}
	d := &Database{Addr: cfg.Addr, Name: name, User: appUser, Password: "pw_" + randomHex(8),
		WorkerUser: "fr_wrk_" + suffix, WorkerPassword: "pw_" + randomHex(8)}
	cfg.DBName = ""
	cfg.MultiStatements = true
	d.rootDSN = cfg.FormatDSN()

	root, err := sql.Open("mysql", d.rootDSN)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`; CREATE DATABASE `"+name+"`"); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	schema, err := os.ReadFile(filepath.Join(repoRoot, SchemaFile))
	if err != nil {
		return nil, err
	}
	if _, err := root.ExecContext(ctx, "USE `"+name+"`; "+string(schema)); err != nil {
		return nil, fmt.Errorf("apply %s: %w", SchemaFile, err)
	}
	if err := runAppUserScript(ctx, repoRoot, cfg, d); err != nil {
		return nil, err
	}
	return d, nil
}

// runAppUserScript runs 02-app-user.sh with bash and the mariadb client, as
// the mysql image's entrypoint would with its own client.
func runAppUserScript(ctx context.Context, repoRoot string, root *mysql.Config, d *Database) error {
	client, err := exec.LookPath("mariadb")
	if err != nil {
		if client, err = exec.LookPath("mysql"); err != nil {
			return fmt.Errorf("the mariadb (or mysql) client is needed to run %s", AppUserScript)
		}
	}
	host, port, err := net.SplitHostPort(root.Addr)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, AppUserScript))
	cmd.Env = append(os.Environ(),
		"MYSQL_CLIENT="+client+" --no-defaults --protocol=tcp -h "+host+" -P "+port+" -u "+root.User,
		"MYSQL_PWD="+root.Passwd,
		"MYSQL_DATABASE="+d.Name,
		"MYSQL_APP_USER="+d.User,
		"MYSQL_APP_PASSWORD="+d.Password,
		"MYSQL_WORKER_USER="+d.WorkerUser,
		"MYSQL_WORKER_PASSWORD="+d.WorkerPassword,
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", AppUserScript, err, out)
	}
	return nil
}

// Drop removes the database and the application user.
func (d *Database) Drop(ctx context.Context) error {
	root, err := sql.Open("mysql", d.rootDSN)
	if err != nil {
		return err
	}
	defer root.Close()
	_, err = root.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+d.Name+"`; DROP USER IF EXISTS '"+d.User+"'@'%', '"+d.WorkerUser+"'@'%'")
	return err
}

// AppDSN is a DSN for the application user on the database.
func (d *Database) AppDSN() string {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd, c.DBName = "tcp", d.Addr, d.User, d.Password, d.Name
	return c.FormatDSN()
}

// WorkerDSN is a DSN for the worker's user on the database.
func (d *Database) WorkerDSN() string {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd, c.DBName = "tcp", d.Addr, d.WorkerUser, d.WorkerPassword, d.Name
	return c.FormatDSN()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
