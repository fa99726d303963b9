# failready: run `make help` for the targets. Every target works from a clean
# clone; the ones that need a program install it by pinned version.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO             ?= go
GIT_COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
MYSQL_TEST_DSN ?= root@tcp(127.0.0.1:3306)/test
export GIT_COMMIT MYSQL_TEST_DSN

# The packages that hold integration tests (//go:build integration).
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | xargs -r -n1 dirname | sort -u)

.PHONY: help up down logs local test test-integration e2e ci fmt vet mariadb walkthrough-logging

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

up: ## build the services at this commit, start the compose stack, print the URLs
	docker compose up -d --build --wait
	@echo
	@echo "failready is up (version $(GIT_COMMIT)):"
	@echo "  service1  http://localhost:8000/        (try: curl -i http://localhost:8000/)"
	@echo "  service2  http://localhost:8001/users"
	@echo "  mysql     127.0.0.1:3307 (user failready, password failready)"
	@echo "  logs      make logs"

down: ## stop the compose stack and delete its data
	docker compose down -v --remove-orphans

logs: ## follow the compose stack's logs
	docker compose logs -f

local: mariadb ## run the stack without Docker: host processes on loopback (Ctrl-C stops)
	$(GO) run ./cmd/local

walkthrough-logging: ## run the README's logging walkthrough against `make up`
	scripts/walkthrough-logging.sh

fmt: ## format the code
	gofmt -w .

vet: ## gofmt check and go vet, with every build tag
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags 'integration e2e' ./...

test: vet ## unit tests: Go only, no services needed
	$(GO) test -race -count=1 ./...

test-integration: ## tests against a real MySQL-protocol server (MYSQL_TEST_DSN)
	$(GO) test -race -count=1 -tags integration $(INTEGRATION_PKGS)

e2e: mariadb ## the real binaries and a private mariadbd as host processes
	$(GO) test -count=1 -timeout 10m -tags e2e ./e2e/

ci: test test-integration e2e ## everything CI runs

mariadb: ## make sure mariadbd is installed (Debian's mariadb-server)
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server; }
