# failready: run `make help` for the targets. Every target works from a clean
# clone; the ones that need a program install it by pinned version.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO             ?= go
GIT_COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
MYSQL_TEST_DSN ?= root@tcp(127.0.0.1:3306)/test
export GIT_COMMIT MYSQL_TEST_DSN


include tools.mk

# The packages that hold integration tests (//go:build integration).
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | xargs -r -n1 dirname | sort -u)

.PHONY: experiment gameday chaos-latency chaos-service2-down chaos-mysql-down chaos-reset-peer chaos-kill chaos-disk-full chaos-reset chaos-nats-down chaos-kill-worker chaos-worker-slow chaos-poison-task
.PHONY: images docker-plugins busybox compose-smoke all-tools
.PHONY: release-gate release-gate-capacity lint vet-go test-go bench bench-check bench-baseline bench-load bench-logs bench-worker bench-capacity valgrind k8s-tools k8s-validate k8s-up k8s-down slo-rules help up down logs local load test test-integration e2e ci fmt vet mariadb tools otelcol local-tools jq shellcheck walkthroughs walkthrough-logging walkthrough-metrics walkthrough-tracing walkthrough-chaos walkthrough-logs-pipeline walkthrough-worker walkthrough-kubernetes

# make help lists the targets by section (the ##@ lines), this file's
# first, then the tools'.
help: ## list the targets, by section
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5)} /^[a-z0-9-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Workshop: the stack, on compose or natively

# With VENDOR_OTLP_ENDPOINT set, the collector also sends the traces and
# logs to that vendor (docs/vendor.md); unset, nothing changes.
COMPOSE_VENDOR = $(if $(VENDOR_OTLP_ENDPOINT),-f docker-compose.yml -f deploy/otel-collector/vendor.compose.yaml)

up: ## build the services at this commit, start the compose stack, print the URLs (VENDOR_OTLP_ENDPOINT: fan out to a vendor too)
	@scripts/stack.sh ports-free
	docker compose $(COMPOSE_VENDOR) up -d --build --wait
	@echo
	@echo "failready is up (version $(GIT_COMMIT)):"
	@echo "  service1  http://localhost:8000/        (try: curl -i http://localhost:8000/)"
	@echo "  service2  http://localhost:8001/users"
	@echo "  grafana   http://localhost:3000/        (dashboards in the failready folder; no login)"
	@echo "  jaeger    http://localhost:16686/       (traces)"
	@echo "  prometheus http://localhost:9090/"
	@echo "  alertmanager http://localhost:9093/    (routes page and ticket alerts; notifications: http://localhost:9095/alerts)"
	@echo "  statsd-exporter http://localhost:9102/metrics"
	@echo "  loki      http://localhost:3100/        (the logs; query them from Grafana's Logs dashboard)"
	@echo "  nats      nats://localhost:4222         (monitoring http://localhost:8222/jsz?consumers=true; 2 workers)"
	@echo "  mysql     127.0.0.1:3307 (user failready, password failready)"
	@echo "  logs      make logs;  load: make load;  chaos: make experiment NAME=service2-down, make gameday"
	@$(if $(VENDOR_OTLP_ENDPOINT),echo "  vendor    the collector also sends traces and logs to $(VENDOR_OTLP_ENDPOINT)")

# Every profile: a one-off container of a profiled service (make load's
# loadgen, the chaos diskfill) still running would otherwise be left, with
# the network it holds.
down: ## stop the compose stack and delete its data
	docker compose --profile '*' down -v --remove-orphans

logs: ## follow every program's logs, of whichever stack runs (scripts/logs service1 service2 for some)
	@scripts/logs -f

# The runner is exec'd, not run under `go run`: make forwards SIGTERM to its
# child, and `go run` would die of it and leave the runner and the stack
# running. LOCAL_FLAGS passes flags to it (see go run ./cmd/local -h). The
# tools it needs are built once, side by side (a sub-make with -j), by the
# runner itself when they are missing, once the services serve: on a first
# run, metrics, traces and NATS join once built (about 15 minutes on 2
# cores from empty Go caches; the README has the figures).
LOCAL_FLAGS ?=
# Longest first: Jaeger and the collector are the long poles of a first run.
local-tools: $(JAEGER_BIN) $(OTELCOL_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(NATS_SERVER_BIN) $(STATSD_EXPORTER_BIN)
	@:
local: mariadb ## run the stack without Docker: host processes on loopback, on compose's ports (Ctrl-C stops)
	$(GO_STATIC) build -trimpath -o .cache/bin/local ./cmd/local
	LOCAL_BUILD_TOOLS='$(MAKE) --no-print-directory -j4 local-tools' exec .cache/bin/local $(LOCAL_FLAGS)

LOAD_RATE     ?= 50
LOAD_DURATION ?= 60s
load: ## drive a bounded load at service1 (LOAD_RATE=50 LOAD_DURATION=60s); compose if it runs, else localhost:8000
	@if docker compose ps --status running service1 2>/dev/null | grep -q service1; then \
		LOAD_RATE=$(LOAD_RATE) LOAD_DURATION=$(LOAD_DURATION) docker compose --profile load run --rm loadgen; \
	else \
		$(GO) run ./cmd/loadgen -target http://localhost:8000 -rate $(LOAD_RATE) -duration $(LOAD_DURATION); \
	fi

# Images for a machine with a Docker engine and no registry (the compose
# smoke, CI): every third-party image of docker-compose.yml built here as a
# stand-in, under its own name and tag, from the same pinned programs
# (cmd/standins, deploy/images/images.yaml), and the golang image the
# Dockerfile's build stage starts from. make up then builds the project's
# own images through BuildKit as on any machine. On a laptop with a
# registry, make up pulls the real images and none of this is needed.
images: docker-plugins busybox $(STATSD_EXPORTER_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(OTELCOL_BIN) $(JAEGER_BIN) $(NATS_SERVER_BIN) $(TOXIPROXY_BIN) $(DEBIAN_ROOTFS) ## build the stand-in images (no registry): the third-party images of docker-compose.yml from the pinned programs, labelled org.failready.standin
	$(GO) run ./cmd/standins -debian $(DEBIAN_ROOTFS)

##@ Chaos and experiments

# Chaos experiments (see docs/walkthroughs.md, walkthrough 4), against
# whichever stack runs: toxiproxy's API is on 127.0.0.1:8474 in both (make
# up and make local); scripts/stack.sh kills and fills the spool the way
# each stack needs. `make chaos-reset` undoes them all.
TOXIPROXY ?= http://127.0.0.1:8474
TOXI := curl -fsS -H 'Content-Type: application/json'
chaos-latency: ## chaos: add 2 s of latency between service1 and service2
	$(TOXI) -d '{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":2000,"jitter":200}}' $(TOXIPROXY)/proxies/service2/toxics && echo

chaos-service2-down: ## chaos: take service2 away from service1 (connections refused)
	$(TOXI) -d '{"enabled":false}' $(TOXIPROXY)/proxies/service2 && echo

chaos-mysql-down: ## chaos: take MySQL away from service2
	$(TOXI) -d '{"enabled":false}' $(TOXIPROXY)/proxies/mysql && echo

chaos-reset-peer: ## chaos: reset every connection between service2 and MySQL
	$(TOXI) -d '{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}' $(TOXIPROXY)/proxies/mysql/toxics && echo

chaos-nats-down: ## chaos: take NATS away from service2 and the workers (creates go on; the tasks wait in the outbox)
	$(TOXI) -d '{"enabled":false}' $(TOXIPROXY)/proxies/nats && echo
	$(TOXI) -d '{"enabled":false}' $(TOXIPROXY)/proxies/worker-nats && echo

chaos-worker-slow: ## chaos: 2 s of latency between the workers and NATS: every task's ack waits, the queue grows
	$(TOXI) -d '{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":2000}}' $(TOXIPROXY)/proxies/worker-nats/toxics && echo

chaos-poison-task: ## chaos: publish a task that can never succeed (no user); the worker dead-letters it at once
	@$(GO) run ./cmd/tasks -nats "$$(scripts/stack.sh nats-url)" poison

chaos-kill-worker: ## chaos: SIGKILL the worker (compose: every replica) mid-task; it comes back and its tasks are delivered again
	@scripts/stack.sh kill worker

chaos-kill: ## chaos: SIGKILL service2; the restart policy (compose's, or make local's runner) brings it back
	@scripts/stack.sh kill service2

chaos-disk-full: ## chaos: fill service2's spool filesystem (16 MiB)
	@scripts/stack.sh fill-spool

chaos-reset: ## chaos: undo every experiment (toxics, proxies, the spool)
	$(TOXI) -X POST $(TOXIPROXY)/reset && echo "toxiproxy reset"
	@scripts/stack.sh free-spool

# Chaos experiments as code (deploy/chaos, one YAML file each; see
# docs/chaos.md): cmd/chaos checks the steady state, injects the fault with
# the chaos-* targets above, checks the hypothesis, rolls back, checks the
# steady state returns; a verdict, a journal and its postmortem (markdown)
# in .cache/chaos, Grafana
# annotations (compose). CHAOS_FLAGS passes flags (go run ./cmd/chaos -h).
CHAOS_FLAGS ?=
CHAOS = $(GO) build -o .cache/bin/chaos ./cmd/chaos && .cache/bin/chaos $(CHAOS_FLAGS)
experiment: ## chaos: one experiment against the running stack, with its hypothesis checked, and its postmortem (NAME=service2-down; ls deploy/chaos)
	@test -n "$(NAME)" || { echo "usage: make experiment NAME=<$$(ls deploy/chaos | sed -n 's/\.yaml$$//p' | paste -sd'|')>" >&2; exit 2; }
	@$(CHAOS) run $(NAME)

gameday: ## chaos: every experiment of deploy/chaos in turn against the running stack, then a table of verdicts; a postmortem each
	@$(CHAOS) gameday

##@ Walkthroughs

# The walkthroughs of docs/walkthroughs.md as scripts that check what they
# say you see, against whichever stack runs; make e2e runs them on make local.
walkthrough-logging: jq ## walkthrough 1 (logs and request IDs), checked, against the running stack
	scripts/walkthrough-logging.sh

walkthrough-metrics: jq ## walkthrough 2 (metrics), checked, against the running stack
	scripts/walkthrough-metrics.sh

walkthrough-tracing: jq ## walkthrough 3 (traces, through Jaeger's API), checked, against the running stack
	scripts/walkthrough-tracing.sh

walkthrough-chaos: jq ## walkthrough 4 (the game day: every experiment, each verdict HELD; the rate limit), checked, against the running stack
	scripts/walkthrough-chaos.sh

walkthrough-logs-pipeline: jq ## walkthrough 5 (a red panel → a request's log lines in Loki → its trace → its metrics), checked, against the running stack
	scripts/walkthrough-logs-pipeline.sh

walkthrough-worker: jq ## walkthrough 6 (the worker and its queue: a task across the queue, a killed worker, NATS away, a slow worker, a poison task), checked, against the running stack
	scripts/walkthrough-worker.sh

walkthrough-kubernetes: jq $(KUSTOMIZE_BIN) ## walkthrough 7 (Kubernetes and autoscaling: the manifests, the signals KEDA scales on read from the running stack; a kind cluster's steps when make k8s-up made one), checked
	scripts/walkthrough-kubernetes.sh

walkthroughs: walkthrough-logging walkthrough-metrics walkthrough-tracing walkthrough-chaos walkthrough-logs-pipeline walkthrough-worker walkthrough-kubernetes ## walkthroughs 1 to 7, in order

##@ Tests

fmt: ## format the code
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

ALL_TAGS = integration e2e benchload compose
# go vet builds with -race, as make test's go test does, so that every
# package is compiled once, for both; so does staticcheck (GOFLAGS=-race: the
# export data it asks go list for is the race build's). lint (staticcheck,
# shellcheck, gofmt) runs beside the Go tests in make test.
vet: lint vet-go ## gofmt check, go vet and staticcheck, with every build tag; shellcheck on scripts/

vet-go:
	$(GO) vet -race -tags '$(ALL_TAGS)' ./...

lint: $(STATICCHECK_BIN) shellcheck
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	GOFLAGS='$(GOFLAGS) -race' $(STATICCHECK_BIN) -tags '$(ALL_TAGS)' ./...
	shellcheck -S warning -x scripts/*.sh scripts/logs deploy/images/*/docker-entrypoint.sh

# The Go tests (go vet, then the race-detecting run, on one build) beside
# the lint (staticcheck is built on first use meanwhile).
test: ## unit tests (race detector), the lift proof, gofmt, go vet, staticcheck, shellcheck: Go only, no services needed
	@$(MAKE) --no-print-directory -j2 lint test-go

test-go: vet-go
	$(GO) test -race -count=1 ./...

test-integration: ## tests against a real MySQL-protocol server (MYSQL_TEST_DSN)
	$(GO) test -race -count=1 -tags integration $(INTEGRATION_PKGS)

e2e: mariadb jq tools k8s-tools $(SLOTH_BIN) ## the real binaries and every program of the stack as host processes; the walkthrough scripts against make local
	$(GO) test -count=1 -timeout 35m -tags e2e ./e2e/

ci: test test-integration e2e compose-smoke bench-check ## everything CI runs

# The compose smoke: make up for real on this machine's Docker engine, every
# image built here (make images), then the walkthroughs, the chaos targets,
# scaling, a request ID and a crash through the logs pipeline, the peak
# memory of every container, and make down, which runs on every exit path.
SMOKE_MEMORY_TABLE ?= $(CURDIR)/.cache/compose-smoke-memory.md
export SMOKE_MEMORY_TABLE
compose-smoke: images jq ## make up on the Docker engine with images built here (no registry), then walkthroughs 1-3, 5, 6, the chaos targets, scaling, the logs pipeline, make down (about 6 min warm)
	@mkdir -p $(dir $(SMOKE_MEMORY_TABLE))
	set -o pipefail; $(GO) test -count=1 -timeout 45m -tags compose -v ./e2e/compose/ 2>&1 | grep --line-buffered -v '^=== '

# The SLO rules are generated (Sloth) and committed; their promtool tests
# fail when the two drift apart.
slo-rules: $(SLOTH_BIN) ## regenerate deploy/prometheus/rules/slo.yaml from the SLO specs in deploy/slo, and their alerts' promtool tests (commit them; the tests fail on drift)
	$(SLOTH_BIN) generate --no-log -i deploy/slo/failready.yaml -o deploy/prometheus/rules/slo.yaml
	UPDATE_SLO_TESTS=1 $(GO) test -count=1 -run TestSLORuleTestsGenerated ./stackfiles

##@ Kubernetes

# deploy/kubernetes: rendered by kustomize and created, object by object,
# on a real kube-apiserver with etcd (make e2e runs it too).
K8S_OVERLAY = deploy/kubernetes/overlays/local
KUSTOMIZE_BUILD = $(KUSTOMIZE_BIN) build --load-restrictor=LoadRestrictionsNone
k8s-validate: k8s-tools ## render deploy/kubernetes and create every object on a real kube-apiserver (server-side dry run, strict validation), KEDA's CRDs installed; and show that a broken manifest is refused
	set -o pipefail; $(GO) test -count=1 -timeout 10m -tags e2e -run 'TestKubernetesManifestsOnARealAPIServer' -v ./e2e/ | grep -v '^=== '

# A local cluster (kind, needs Docker): the images built from this commit
# and loaded into the nodes, KEDA from its release manifest, then the stack.
KEDA_RELEASE = https://github.com/kedacore/keda/releases/download/$(KEDA_VERSION)/keda-$(patsubst v%,%,$(KEDA_VERSION)).yaml
KUBECTL_K8S = $(KUBECTL_BIN) --context kind-failready
METRICS_SERVER_RELEASE = https://github.com/kubernetes-sigs/metrics-server/releases/download/$(METRICS_SERVER_VERSION)/components.yaml
k8s-up: $(KIND_BIN) $(KUSTOMIZE_BIN) $(KUBECTL_BIN) ## a local Kubernetes cluster (kind; needs Docker) with the whole stack, metrics-server and KEDA (walkthrough 7)
	$(KIND_BIN) get clusters | grep -qx failready || $(KIND_BIN) create cluster --config $(K8S_OVERLAY)/kind.yaml
	for s in service1 service2 worker alertlog loadgen; do \
		docker build -q --target $$s --build-arg VERSION=$(GIT_COMMIT) -t failready-$$s:k8s . && \
		$(KIND_BIN) load docker-image --name failready failready-$$s:k8s || exit 1; done
	$(KUBECTL_K8S) apply --server-side -f $(METRICS_SERVER_RELEASE)
	$(KUBECTL_K8S) -n kube-system get deployment metrics-server -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- --kubelet-insecure-tls || \
		$(KUBECTL_K8S) -n kube-system patch deployment metrics-server --type=json \
			-p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
	$(KUBECTL_K8S) -n kube-system rollout status deployment metrics-server --timeout=180s
	$(KUBECTL_K8S) apply --server-side -f $(KEDA_RELEASE)
	$(KUBECTL_K8S) -n keda wait --for=condition=Available deployment --all --timeout=180s
	$(KUSTOMIZE_BUILD) $(K8S_OVERLAY) | $(KUBECTL_K8S) apply --server-side --field-manager=failready -f -
	$(KUBECTL_K8S) -n failready wait --for=condition=Available deployment --all --timeout=300s
	@echo "up: kubectl --context kind-failready -n failready port-forward svc/service1 8000 (and svc/grafana 3000, svc/prometheus 9090)"

k8s-down: $(KIND_BIN) ## delete the local Kubernetes cluster and everything in it
	$(KIND_BIN) delete cluster --name failready

##@ Release gate

# Open-loop load (loadgen's mix), then each SLO judged over the run from the
# recording rules Prometheus has loaded: the exit status says whether the
# build may ship. Either stack: compose publishes service1 and Prometheus on
# the same loopback ports as make local.
GATE_RATE     ?= 50
GATE_DURATION ?= 60s
GATE_STEP     ?= 30s
GATE_MAX_TIME ?= 10m
release-gate: ## the release gate: load at GATE_RATE=50 for GATE_DURATION=60s, then PASS or FAIL per SLO (budget burned, p99, freshness); exit 1 on a FAIL
	$(GO) run ./cmd/loadgen -target http://localhost:8000 -gate http://localhost:9090 -rate $(GATE_RATE) -duration $(GATE_DURATION)

release-gate-capacity: ## the release gate's capacity search: rising rates, GATE_STEP=30s each, until one fails (GATE_MAX_TIME=10m at most); beside docs/kubernetes.md's capacity table. Start the stack with RATE_LIMIT_PER_CLIENT and RATE_LIMIT_GLOBAL raised, or it finds the rate limit
	$(GO) run ./cmd/loadgen -target http://localhost:8000 -gate http://localhost:9090 -capacity -duration $(GATE_STEP) -max-time $(GATE_MAX_TIME) -capacity-table docs/kubernetes.md

##@ Benchmarks

# Five rounds of every benchmark, interleaved (go test -count 5 would run each
# one five times in a row), so that a shared machine's slow drift weighs on
# the baseline and the stack alike; benchratio takes the medians.
BENCH_ROUNDS ?= 5
BENCH = ( $(GO) test -c -o $(BENCH_TEST) ./service1/ && \
	for i in $$(seq $(BENCH_ROUNDS)); do $(BENCH_TEST) -test.run '^$$' -test.bench . -test.benchmem || exit 1; done )
bench: ## benchmarks: the server and client stacks beside their baselines, as ratios (BENCHMARKS.md)
	set -o pipefail; $(BENCH) | tee /dev/stderr | $(GO) run ./cmd/benchratio

# The performance gate counts instructions (callgrind), which do not depend
# on what else the machine runs; see cmd/benchinstr and BENCHMARKS.md.
BENCH_TEST = .cache/bench/service1.test
bench-check: valgrind ## the perf gate: the allocation budget, then instructions per request (callgrind) as ratios, against bench/instructions.json; fails on > 3 %
	$(GO) test -c -o $(BENCH_TEST) ./service1/
	$(BENCH_TEST) -test.count=1 -test.run 'AllocationBudget' -test.v  # allocation counts need a build without -race
	$(GO) run ./cmd/benchinstr -test $(BENCH_TEST) -check bench/instructions.json

bench-load: mariadb tools ## the end-to-end load benchmark: telemetry off, to a sink, through the pipeline, dead, black-holed (5 min; BENCHMARKS.md)
	set -o pipefail; $(GO) test -count=1 -timeout 30m -tags 'e2e benchload' -run TestLoadTelemetryOverhead -v ./e2e/ | grep -v '^=== '

bench-logs: mariadb tools ## the logs pipeline's throughput: bursts of access lines through the real collector on one core, none lost (BENCHMARKS.md)
	set -o pipefail; $(GO) test -count=1 -timeout 15m -tags 'e2e benchload' -run TestLogsPipelineThroughput -v ./e2e/ | grep -v '^=== '

bench-capacity: mariadb tools ## what one replica of each workload takes at the latency objective: the figures deploy/kubernetes's requests, limits and KEDA thresholds come from (4 min; BENCHMARKS.md)
	set -o pipefail; $(GO) test -count=1 -timeout 15m -tags 'e2e benchload' -run TestCapacity -v ./e2e/ | grep -v '^=== '

bench-worker: mariadb tools ## the queue tier: no-op tasks a second per worker, commit → in JetStream, and what the outbox costs a create (as a ratio) (BENCHMARKS.md)
	set -o pipefail; $(GO) test -count=1 -timeout 10m -tags 'e2e benchload' -run TestWorkerThroughput -v ./e2e/ | grep -v '^=== '
	set -o pipefail; $(GO) test -tags integration -run '^$$' -bench CreateUser -count $(BENCH_ROUNDS) ./service2/ | tee /dev/stderr | $(GO) run ./cmd/benchratio

bench-baseline: valgrind ## record a new bench/instructions.json (commit it with the change that moved it)
	$(GO) test -c -o $(BENCH_TEST) ./service1/
	$(GO) run ./cmd/benchinstr -test $(BENCH_TEST) -write bench/instructions.json
