# failready: run `make help` for the targets. Every target works from a clean
# clone; the ones that need a program install it by pinned version.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO             ?= go
GIT_COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
MYSQL_TEST_DSN ?= root@tcp(127.0.0.1:3306)/test
export GIT_COMMIT MYSQL_TEST_DSN

# Pinned tools, installed by `go install` into a cache outside the clone,
# once per version, shared by every clone (FAILREADY_TOOLS moves it). The
# ones the stand-in images carry (make images) are static (CGO_ENABLED=0),
# as their upstream images' are: scratch and busybox images have no C
# library to load ("-static" in their folder's name). Keep
# them equal to the compose image tags (a test checks): statsd-exporter
# vX.Y.Z is prom/statsd-exporter:vX.Y.Z; the Prometheus Go module v0.3XX.Y is
# Prometheus v3.XX.Y.
FAILREADY_TOOLS           ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/failready/tools
TOOLS                     := $(FAILREADY_TOOLS)
STATSD_EXPORTER_VERSION   := v0.31.0
PROMETHEUS_MODULE_VERSION := v0.316.0
OTELCOL_VERSION           := v0.165.0
# Jaeger's module v1.76.0 is Jaeger v2.13.0 (the project tags both on one
# commit): jaegertracing/jaeger:2.13.0 in compose.
JAEGER_MODULE_VERSION     := v1.76.0
JAEGER_VERSION            := 2.13.0
# The compose CLI the tests run `config -q` with (docker compose v2).
COMPOSE_VERSION           := v2.40.3
# nats-server vX.Y.Z is the nats:X.Y.Z image.
NATS_SERVER_VERSION       := v2.15.3
STATICCHECK_VERSION       := v0.8.2
# Kubernetes (deploy/kubernetes): kube-apiserver and kubectl build from
# k8s.io/kubernetes, whose staging modules are published as k8s.io/X
# v0.MINOR.PATCH; etcd is the latest patch of the 3.7 series Kubernetes
# v1.37 tests with (3.7.0 in its hack/lib/etcd.sh and kubeadm); kind's
# release names its node image (kindest/node:v1.37.0 for kind v0.33.0); KEDA
# is the release whose CRDs (from its Go module) the manifests are checked
# against, and whose release manifest make k8s-up applies.
KUBERNETES_VERSION        := v1.37.2
KUBERNETES_STAGING        := v0.37.2
ETCD_VERSION              := v3.7.3
KUSTOMIZE_VERSION         := v5.8.2
KIND_VERSION              := v0.33.0
KEDA_VERSION              := v2.21.0
# metrics-server, which KEDA's cpu triggers read; make k8s-up applies its
# release manifest.
METRICS_SERVER_VERSION    := v0.8.0
# Sloth generates the SLO rules (deploy/slo -> deploy/prometheus/rules).
SLOTH_VERSION             := v0.16.0
# Alertmanager vX.Y.Z is prom/alertmanager:vX.Y.Z in compose.
ALERTMANAGER_VERSION      := v0.35.0
# toxiproxy vX.Y.Z is ghcr.io/shopify/toxiproxy:X.Y.Z (its server and CLI,
# for the stand-in image; make local and make e2e run it in process).
TOXIPROXY_VERSION         := v2.12.0
# buildx, the docker CLI plugin compose builds through (BuildKit): the
# version compose $(COMPOSE_VERSION)'s go.mod requires.
BUILDX_VERSION            := v0.29.1
# The MySQL stand-in's root filesystem: Debian's MariaDB by debootstrap,
# cached by suite and month.
DEBIAN_SUITE              := bookworm
DEBIAN_MONTH              := $(shell date -u +%Y%m)
STATSD_EXPORTER_BIN := $(TOOLS)/statsd_exporter-$(STATSD_EXPORTER_VERSION)-static/statsd_exporter
PROMETHEUS_BIN      := $(TOOLS)/prometheus-$(PROMETHEUS_MODULE_VERSION)-nosd-static/prometheus
PROMTOOL_BIN        := $(TOOLS)/prometheus-$(PROMETHEUS_MODULE_VERSION)-nosd-static/promtool
OTELCOL_BUILDER     := $(TOOLS)/builder-$(OTELCOL_VERSION)/builder
# The collector is keyed by its manifest too (comments aside): clones with
# different manifests share the cache.
OTELCOL_MANIFEST    := $(shell grep -v '^ *\#' deploy/otel-collector/builder-config.yaml | sha256sum | cut -c1-12)
OTELCOL_DIR         := $(TOOLS)/otelcol-$(OTELCOL_VERSION)-$(OTELCOL_MANIFEST)
OTELCOL_BIN         := $(OTELCOL_DIR)/otelcol-failready/otelcol-failready
STATICCHECK_BIN     := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
JAEGER_BIN          := $(TOOLS)/jaeger-$(JAEGER_MODULE_VERSION)-static/jaeger
COMPOSE_BIN         := $(TOOLS)/compose-$(COMPOSE_VERSION)/docker-compose
NATS_SERVER_BIN     := $(TOOLS)/nats-server-$(NATS_SERVER_VERSION)-static/nats-server
KUBE_DIR            := $(TOOLS)/kubernetes-$(KUBERNETES_VERSION)
KUBE_APISERVER_BIN  := $(KUBE_DIR)/kube-apiserver
KUBECTL_BIN         := $(KUBE_DIR)/kubectl
ETCD_BIN            := $(TOOLS)/etcd-$(ETCD_VERSION)/etcd
KUSTOMIZE_BIN       := $(TOOLS)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
KIND_BIN            := $(TOOLS)/kind-$(KIND_VERSION)/kind
SLOTH_BIN           := $(TOOLS)/sloth-$(SLOTH_VERSION)/sloth
ALERTMANAGER_BIN    := $(TOOLS)/alertmanager-$(ALERTMANAGER_VERSION)-static/alertmanager
AMTOOL_BIN          := $(TOOLS)/alertmanager-$(ALERTMANAGER_VERSION)-static/amtool
TOXIPROXY_BIN       := $(TOOLS)/toxiproxy-$(TOXIPROXY_VERSION)-static/server
TOXIPROXY_CLI_BIN   := $(TOOLS)/toxiproxy-$(TOXIPROXY_VERSION)-static/cli
BUILDX_BIN          := $(TOOLS)/buildx-$(BUILDX_VERSION)/docker-buildx
DEBIAN_ROOTFS       := $(TOOLS)/debian-$(DEBIAN_SUITE)-mariadb-$(DEBIAN_MONTH).tar
CLI_PLUGINS         := $(HOME)/.docker/cli-plugins
export STATSD_EXPORTER_BIN PROMETHEUS_BIN PROMTOOL_BIN OTELCOL_BIN JAEGER_BIN COMPOSE_BIN NATS_SERVER_BIN ALERTMANAGER_BIN AMTOOL_BIN
export TOXIPROXY_BIN TOXIPROXY_CLI_BIN
export KUBE_APISERVER_BIN KUBECTL_BIN ETCD_BIN KUSTOMIZE_BIN KEDA_VERSION KUBERNETES_VERSION SLOTH_BIN

# The packages that hold integration tests (//go:build integration).
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | xargs -r -n1 dirname | sort -u)

.PHONY: experiment gameday chaos-latency chaos-service2-down chaos-mysql-down chaos-reset-peer chaos-kill chaos-disk-full chaos-reset chaos-nats-down chaos-kill-worker chaos-worker-slow chaos-poison-task
.PHONY: images docker-plugins busybox compose-smoke all-tools
.PHONY: bench bench-check bench-baseline bench-load bench-logs bench-worker bench-capacity valgrind k8s-tools k8s-validate k8s-up k8s-down slo-rules help up down logs local load test test-integration e2e ci fmt vet mariadb tools otelcol local-tools jq shellcheck walkthroughs walkthrough-logging walkthrough-metrics walkthrough-tracing walkthrough-chaos walkthrough-logs-pipeline walkthrough-worker walkthrough-kubernetes

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

up: ## build the services at this commit, start the compose stack, print the URLs
	@scripts/stack.sh ports-free
	docker compose up -d --build --wait
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

down: ## stop the compose stack and delete its data
	docker compose down -v --remove-orphans

logs: ## follow every program's logs, of whichever stack runs (scripts/logs service1 service2 for some)
	@scripts/logs -f

# The runner is exec'd, not run under `go run`: make forwards SIGTERM to its
# child, and `go run` would die of it and leave the runner and the stack
# running. LOCAL_FLAGS passes flags to it (see go run ./cmd/local -h). The
# tools it needs are built once, side by side (a sub-make with -j), by the
# runner itself when they are missing, once the services serve: on a first
# run, metrics and traces join a few minutes after the stack is up.
LOCAL_FLAGS ?=
local-tools: $(STATSD_EXPORTER_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(OTELCOL_BIN) $(JAEGER_BIN) $(NATS_SERVER_BIN)
	@:
local: mariadb ## run the stack without Docker: host processes on loopback, on compose's ports (Ctrl-C stops)
	$(GO) build -o .cache/bin/local ./cmd/local
	LOCAL_BUILD_TOOLS='$(MAKE) --no-print-directory -j4 local-tools' exec .cache/bin/local $(LOCAL_FLAGS)

LOAD_RATE     ?= 50
LOAD_DURATION ?= 60s
load: ## drive a bounded load at service1 (LOAD_RATE=50 LOAD_DURATION=60s); compose if it runs, else localhost:8000
	@if docker compose ps --status running service1 2>/dev/null | grep -q service1; then \
		LOAD_RATE=$(LOAD_RATE) LOAD_DURATION=$(LOAD_DURATION) docker compose --profile load run --rm loadgen; \
	else \
		$(GO) run ./cmd/loadgen -target http://localhost:8000 -rate $(LOAD_RATE) -duration $(LOAD_DURATION); \
	fi

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
# steady state returns; a verdict, a journal in .cache/chaos, Grafana
# annotations (compose). CHAOS_FLAGS passes flags (go run ./cmd/chaos -h).
CHAOS_FLAGS ?=
CHAOS = $(GO) build -o .cache/bin/chaos ./cmd/chaos && .cache/bin/chaos $(CHAOS_FLAGS)
experiment: ## chaos: one experiment against the running stack, with its hypothesis checked (NAME=service2-down; ls deploy/chaos)
	@test -n "$(NAME)" || { echo "usage: make experiment NAME=<$$(ls deploy/chaos | sed -n 's/\.yaml$$//p' | paste -sd'|')>" >&2; exit 2; }
	@$(CHAOS) run $(NAME)

gameday: ## chaos: every experiment of deploy/chaos in turn against the running stack, then a table of verdicts
	@$(CHAOS) gameday

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

jq: ## make sure jq is installed (Debian's jq; the walkthrough scripts read JSON with it)
	@command -v jq >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; }

fmt: ## format the code
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

ALL_TAGS = integration e2e benchload compose
vet: $(STATICCHECK_BIN) shellcheck ## gofmt check, go vet and staticcheck, with every build tag; shellcheck on scripts/
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags '$(ALL_TAGS)' ./...
	$(STATICCHECK_BIN) -tags '$(ALL_TAGS)' ./...
	shellcheck -S warning -x scripts/*.sh scripts/logs deploy/images/*/docker-entrypoint.sh

test: vet ## unit tests: Go only, no services needed
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'AllocationBudget' ./service1/  # allocation counts need a build without -race

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
bench-check: valgrind ## the perf gate: instructions per request (callgrind) as ratios, against bench/instructions.json; fails on > 3 %
	$(GO) test -c -o $(BENCH_TEST) ./service1/
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

# Every pinned tool the tests build, side by side: on a new machine most of
# their time is fetching modules and packages, which overlaps well (.ci/run
# runs this with -j3 before make ci).
all-tools: tools k8s-tools $(SLOTH_BIN) $(BUILDX_BIN) $(TOXIPROXY_BIN) $(DEBIAN_ROOTFS) ## build every pinned tool the tests use (make -j3 all-tools: side by side)

tools: $(STATSD_EXPORTER_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(OTELCOL_BIN) $(JAEGER_BIN) $(COMPOSE_BIN) $(NATS_SERVER_BIN) ## install the pinned statsd_exporter, Prometheus, Alertmanager, collector, Jaeger, compose CLI and nats-server (cached in ~/.cache/failready/tools)

otelcol: $(OTELCOL_BIN) ## build the OpenTelemetry collector from deploy/otel-collector/builder-config.yaml

$(OTELCOL_BUILDER):
	GOBIN=$(dir $@) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OTELCOL_VERSION)

# A changed manifest is a new folder (OTELCOL_MANIFEST); the builder writes
# into the cache.
$(OTELCOL_BIN): $(OTELCOL_BUILDER)
	@echo "building the OpenTelemetry collector $(OTELCOL_VERSION) from deploy/otel-collector/builder-config.yaml once (about 2.5 minutes on 2 cores; cached in $(TOOLS))"
	mkdir -p $(OTELCOL_DIR)
	cd $(OTELCOL_DIR) && $(OTELCOL_BUILDER) --config=$(CURDIR)/deploy/otel-collector/builder-config.yaml

$(STATICCHECK_BIN):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(STATSD_EXPORTER_BIN):
	CGO_ENABLED=0 GOBIN=$(dir $@) $(GO) install github.com/prometheus/statsd_exporter@$(STATSD_EXPORTER_VERSION)

# The stack's own NATS (JetStream), never the machine's.
$(NATS_SERVER_BIN):
	CGO_ENABLED=0 GOBIN=$(dir $@) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# promtool comes with it (same module, same version). -tags remove_all_sd
# leaves out every service-discovery plugin (plugins/*.go are built with
# `!remove_all_sd || enable_<name>_sd`): the project scrapes static targets,
# and the build takes 2 min 47 s instead of 5 min 42 s from an empty Go build cache.
$(PROMETHEUS_BIN):
	@echo "building Prometheus $(PROMETHEUS_MODULE_VERSION) once, without service discovery (about 3 minutes on 2 cores; cached in $(TOOLS))"
	CGO_ENABLED=0 GOBIN=$(dir $@) $(GO) install -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_MODULE_VERSION) \
		github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_MODULE_VERSION)

# build_in_module MODULE VERSION PACKAGES OUTPUT LDFLAGS [PREPARE]: `go
# install` refuses a module whose go.mod has replace directives (Jaeger's,
# compose's), so it is built inside a writable copy of the downloaded module,
# with the module's own go.mod and go.sum, after the PREPARE command if any.
# An OUTPUT ending in / is a folder for several binaries.
define build_in_module
	set -e; src=$$(cd /tmp && $(GO) mod download -json $(1)@$(2) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	work=$$(mktemp -d); trap 'chmod -R u+w "$$work"; rm -rf "$$work"' EXIT; \
	cp -r "$$src" "$$work/src"; chmod -R u+w "$$work/src"; mkdir -p $(dir $(4)); \
	cd "$$work/src"; $(if $(6),$(6);) \
	$(GO) build -mod=mod -trimpath -ldflags "$(5)" -o $(patsubst %/,%.tmp/,$(4)$(if $(filter %/,$(4)),,.tmp)) $(3) && \
	$(if $(filter %/,$(4)),mv $(4:/=.tmp)/* $(4) && rmdir $(4:/=.tmp),mv $(4).tmp $(4))
endef

# Jaeger's UI is not in the module (it is built with npm into the release
# images): this binary serves the query API, the one Grafana's Jaeger data
# source uses, and a placeholder page at /.
$(JAEGER_BIN):
	@echo "building Jaeger $(JAEGER_VERSION) (module $(JAEGER_MODULE_VERSION)) once (about 3.5 minutes on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/jaegertracing/jaeger,$(JAEGER_MODULE_VERSION),./cmd/jaeger,$@,-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$(JAEGER_VERSION),export CGO_ENABLED=0)

# Alertmanager's web UI is not in the module either (npm builds it into
# ui/app/dist for the release): go install refuses the module for the
# missing embed folder, so it is built inside a copy with a placeholder page
# there. The API, the one Prometheus, Grafana and amtool use, is whole.
# amtool comes with it (same module, same version).
$(ALERTMANAGER_BIN):
	@echo "building Alertmanager $(ALERTMANAGER_VERSION) once (about 1.5 minutes on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/prometheus/alertmanager,$(ALERTMANAGER_VERSION),./cmd/alertmanager ./cmd/amtool,$(dir $@),$(AM_LDFLAGS),$(AM_PLACEHOLDER_UI))

AM_LDFLAGS = $(foreach v,Version=$(ALERTMANAGER_VERSION:v%=%) Branch=HEAD Revision=$(ALERTMANAGER_VERSION),-X github.com/prometheus/common/version.$(v))
AM_PLACEHOLDER_UI = export CGO_ENABLED=0; for d in elm mantine; do mkdir -p ui/app/dist/$$d; echo '<p>Alertmanager $(ALERTMANAGER_VERSION) built from its Go module: no web UI (npm builds it for the release). The API is at /api/v2/.</p>' > ui/app/dist/$$d/index.html; done

# Images for a machine with a Docker engine and no registry (the compose
# smoke, CI): every third-party image of docker-compose.yml built here as a
# stand-in, under its own name and tag, from the same pinned programs
# (cmd/standins, deploy/images/images.yaml), and the golang image the
# Dockerfile's build stage starts from. make up then builds the project's
# own images through BuildKit as on any machine. On a laptop with a
# registry, make up pulls the real images and none of this is needed.
images: docker-plugins busybox $(STATSD_EXPORTER_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(OTELCOL_BIN) $(JAEGER_BIN) $(NATS_SERVER_BIN) $(TOXIPROXY_BIN) $(DEBIAN_ROOTFS) ## build the stand-in images (no registry): the third-party images of docker-compose.yml from the pinned programs, labelled org.failready.standin
	$(GO) run ./cmd/standins -debian $(DEBIAN_ROOTFS)

# compose v2 and buildx as docker CLI plugins, by pinned version, from the
# tool cache (Debian's docker-compose is compose v1).
docker-plugins: $(COMPOSE_BIN) $(BUILDX_BIN) ## install the pinned docker compose v2 and buildx as docker CLI plugins (~/.docker/cli-plugins)
	@mkdir -p $(CLI_PLUGINS)
	@cmp -s $(COMPOSE_BIN) $(CLI_PLUGINS)/docker-compose || install -m 0755 $(COMPOSE_BIN) $(CLI_PLUGINS)/docker-compose
	@cmp -s $(BUILDX_BIN) $(CLI_PLUGINS)/docker-buildx || install -m 0755 $(BUILDX_BIN) $(CLI_PLUGINS)/docker-buildx
	@docker compose version && docker buildx version

$(BUILDX_BIN):
	@echo "building docker buildx $(BUILDX_VERSION) once (about 2 minutes on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/docker/buildx,$(BUILDX_VERSION),./cmd/buildx,$@,-X github.com/docker/buildx/version.Version=$(BUILDX_VERSION) -X github.com/docker/buildx/version.Revision=$(BUILDX_VERSION))

$(TOXIPROXY_BIN) $(TOXIPROXY_CLI_BIN) &:
	CGO_ENABLED=0 GOBIN=$(dir $(TOXIPROXY_BIN)) $(GO) install -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$(TOXIPROXY_VERSION:v%=%)" \
		github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) github.com/Shopify/toxiproxy/v2/cmd/cli@$(TOXIPROXY_VERSION)

# Debian's MariaDB on a minimal root, with the mysql user (999) the official
# image has; documentation and apt's lists left out.
$(DEBIAN_ROOTFS):
	@command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
	@echo "making a Debian $(DEBIAN_SUITE) root with MariaDB by debootstrap once a month (about 5 minutes; cached in $(TOOLS))"
	set -e; root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	debootstrap --variant=minbase --include=mariadb-server-core,mariadb-client $(DEBIAN_SUITE) "$$root" http://deb.debian.org/debian >/dev/null; \
	chroot "$$root" groupadd --system --gid 999 mysql; \
	chroot "$$root" useradd --system --uid 999 --gid 999 --home-dir /var/lib/mysql --no-create-home mysql; \
	rm -rf "$$root"/usr/share/doc/* "$$root"/usr/share/man/* "$$root"/usr/share/locale/* "$$root"/var/cache/apt/* "$$root"/var/lib/apt/lists/* "$$root"/var/lib/mysql/*; \
	mkdir -p $(dir $@); tar -C "$$root" --numeric-owner -cf $@.tmp . && mv $@.tmp $@

busybox: ## make sure busybox is installed (Debian's busybox-static; the stand-in images' shell and wget)
	@command -v busybox >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; }

$(COMPOSE_BIN):
	@echo "building docker compose $(COMPOSE_VERSION) once (about 2 minutes on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/docker/compose/v2,$(COMPOSE_VERSION),./cmd,$@,-X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION))

k8s-tools: $(KUSTOMIZE_BIN) $(ETCD_BIN) $(KUBE_APISERVER_BIN) ## install the pinned kustomize, etcd, kube-apiserver and kubectl that check deploy/kubernetes (cached in ~/.cache/failready/tools)

$(KUSTOMIZE_BIN):
	GOBIN=$(dir $@) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Sloth stamps its version into the rules it writes (sloth_version).
$(SLOTH_BIN):
	GOBIN=$(dir $@) $(GO) install -ldflags "-X github.com/slok/sloth/internal/info.Version=$(SLOTH_VERSION)" github.com/slok/sloth/cmd/sloth@$(SLOTH_VERSION)

slo-rules: $(SLOTH_BIN) ## regenerate deploy/prometheus/rules/slo.yaml from the SLO specs in deploy/slo, and their alerts' promtool tests (commit them; the tests fail on drift)
	$(SLOTH_BIN) generate --no-log -i deploy/slo/failready.yaml -o deploy/prometheus/rules/slo.yaml
	UPDATE_SLO_TESTS=1 $(GO) test -count=1 -run TestSLORuleTestsGenerated ./stackfiles

$(KIND_BIN):
	GOBIN=$(dir $@) $(GO) install sigs.k8s.io/kind@$(KIND_VERSION)

# etcd's server module points its sibling modules at ../ folders that are not
# in its module zip: drop those replaces and it builds on the published ones.
$(ETCD_BIN):
	@echo "building etcd $(ETCD_VERSION) once (about 40 s on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,go.etcd.io/etcd/server/v3,$(ETCD_VERSION),.,$@,,go mod edit $(foreach m,api/v3 client/pkg/v3 client/v3 pkg/v3,-dropreplace=go.etcd.io/etcd/$(m)))

# k8s.io/kubernetes replaces its 33 staging modules with ./staging folders that
# are not in its module zip, and its go.work names them too: point each at the
# published k8s.io/X $(KUBERNETES_STAGING) and build without the workspace.
KUBE_VERSION_LDFLAGS = $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(KUBERNETES_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37)
$(KUBE_APISERVER_BIN) $(KUBECTL_BIN) &:
	@echo "building kube-apiserver and kubectl $(KUBERNETES_VERSION) once (about 5 minutes and 3 GB of memory on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,k8s.io/kubernetes,$(KUBERNETES_VERSION),./cmd/kube-apiserver ./cmd/kubectl,$(KUBE_DIR)/,$(KUBE_VERSION_LDFLAGS),rm -f go.work go.work.sum && sed -i -E 's|^(\s+)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+$$|\1\2 => \2 $(KUBERNETES_STAGING)|' go.mod && export GOWORK=off)

shellcheck: ## make sure shellcheck is installed (Debian's shellcheck; make vet runs it on scripts/)
	@command -v shellcheck >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; }

valgrind: ## make sure valgrind is installed (Debian's valgrind; the perf gate runs under it)
	@command -v valgrind >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }

mariadb: ## make sure mariadbd is installed (Debian's mariadb-server)
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server; }
