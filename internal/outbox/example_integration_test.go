//go:build integration

package outbox_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"

	"github.com/go-sql-driver/mysql"

	"github.com/failready/failready/internal/outbox"
)

// A task recorded in the transaction of the change that causes it, then
// published by a relay pass: once, and not again. (Against the server
// MYSQL_TEST_DSN names, in a database of its own.)
func Example() {
	db, drop := exampleDB()
	defer drop()
	ctx := context.Background()

	tx, err := db.BeginTx(ctx, nil)
	must(err)
	_, err = tx.ExecContext(ctx, "INSERT INTO users (first_name, last_name) VALUES ('ada', 'lovelace')")
	must(err)
	_, err = outbox.Add(ctx, tx, "tasks.welcome", []byte(`{"user_id":1}`), map[string]string{"X-Request-Id": "req-1"})
	must(err)
	must(tx.Commit())

	publish := func(_ context.Context, r outbox.Row) error {
		fmt.Println("publish", r.Topic, string(r.Payload), r.Headers["X-Request-Id"])
		return nil // a broker that deduplicates by r.ID makes a second publish harmless
	}
	relay := outbox.NewRelay(db, publish, outbox.Options{})
	n, err := relay.Pass(ctx)
	fmt.Println("published:", n, err)
	n, err = relay.Pass(ctx)
	fmt.Println("then:", n, err)
	// Output:
	// publish tasks.welcome {"user_id":1} req-1
	// published: 1 <nil>
	// then: 0 <nil>
}

// exampleDB creates a database with outbox.Schema and a users table on the
// server MYSQL_TEST_DSN names, and returns it with the func that drops it.
func exampleDB() (*sql.DB, func()) {
	cfg, err := mysql.ParseDSN(os.Getenv("MYSQL_TEST_DSN"))
	must(err)
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	must(err)
	name := "outbox_example_" + rand.Text()[:8]
	_, err = admin.Exec("CREATE DATABASE " + name)
	must(err)
	cfg.DBName = name
	db, err := sql.Open("mysql", cfg.FormatDSN())
	must(err)
	for _, ddl := range []string{outbox.Schema, "CREATE TABLE users (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(64), last_name VARCHAR(64))"} {
		_, err = db.Exec(ddl)
		must(err)
	}
	return db, func() {
		db.Close()
		_, _ = admin.Exec("DROP DATABASE " + name)
		admin.Close()
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
