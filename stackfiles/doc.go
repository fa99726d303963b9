// Package stackfiles holds the tests that read the stack's files (the compose
// file, the Dockerfile, the MySQL init, the README's tables) and check that
// they agree with each other and with the code, since `docker compose up`
// cannot run where the tests run.
package stackfiles
