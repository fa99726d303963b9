//go:build integration

package main

// integrationBuild: make test-integration's run (a MySQL server at
// MYSQL_TEST_DSN), where the lift proof runs the lifted integration tests
// too; make test's, which needs no server, only builds them.
const integrationBuild = true
