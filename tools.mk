# The pinned tools: versions, where each is cached, and how each is built or
# installed (the Makefile includes this file). Go programs are built by
# pinned version from the Go module proxy; the few programs that come from
# Debian's packages are installed by apt_install, which says so first.

##@ Tools

# Pinned tools, installed by `go install` into a cache outside the clone,
# once per version, shared by every clone (FAILREADY_TOOLS moves it). The
# ones the stand-in images carry (make images) are static (CGO_ENABLED=0),
# as their upstream images' are: scratch and busybox images have no C
# library to load ("-static" in their folder's name). make local's tools,
# the collector's builder and the services all build with $(GO_STATIC):
# one build of the standard library, and of any module they share, serves
# them all (each difference in cgo or -trimpath is a build of its own), and
# without DWARF (-s -w) the links are
# shorter. Keep
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
# How make local's tools and the services build (see above); STRIP goes
# first in a recipe's -ldflags (a second -ldflags replaces the first).
GO_STATIC                 := CGO_ENABLED=0 $(GO)
STRIP                     := -s -w
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

# apt_install PROGRAM PACKAGE: a program from Debian's packages, installed
# when it is missing, and said so before apt-get runs (it needs root and the
# network, and changes the machine, not only this clone).
define apt_install
	@command -v $(1) >/dev/null || test -x /usr/sbin/$(1) || { \
		echo "$(1) is missing: installing Debian's $(2) (apt-get update; apt-get install $(2))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2); }
endef

# Every pinned tool the tests build, side by side: on a new machine most of
# their time is fetching modules and packages, which overlaps well (.ci/run
# runs this with -j3 before make ci).
all-tools: tools k8s-tools $(STATICCHECK_BIN) $(SLOTH_BIN) $(BUILDX_BIN) $(TOXIPROXY_BIN) $(DEBIAN_ROOTFS) ## build every pinned tool the tests use (make -j3 all-tools: side by side)

tools: $(STATSD_EXPORTER_BIN) $(PROMETHEUS_BIN) $(ALERTMANAGER_BIN) $(OTELCOL_BIN) $(JAEGER_BIN) $(COMPOSE_BIN) $(NATS_SERVER_BIN) ## install the pinned statsd_exporter, Prometheus, Alertmanager, collector, Jaeger, compose CLI and nats-server (cached in ~/.cache/failready/tools)

otelcol: $(OTELCOL_BIN) ## build the OpenTelemetry collector from deploy/otel-collector/builder-config.yaml

$(OTELCOL_BUILDER):
	GOBIN=$(dir $@) $(GO_STATIC) install -trimpath -ldflags "$(STRIP)" go.opentelemetry.io/collector/cmd/builder@$(OTELCOL_VERSION)

# A changed manifest is a new folder (OTELCOL_MANIFEST); the builder writes
# into the cache. The builder is installed inside this recipe, not as its
# prerequisite: under make -j the collector, a long pole, then starts at
# once (as a prerequisite's dependent it waited for a free slot behind
# shorter builds).
$(OTELCOL_BIN):
	@$(MAKE) --no-print-directory $(OTELCOL_BUILDER)
	@echo "building the OpenTelemetry collector $(OTELCOL_VERSION) from deploy/otel-collector/builder-config.yaml once (8.5 minutes beside the other tools of a first make local on 2 cores; cached in $(TOOLS))"
	mkdir -p $(OTELCOL_DIR)
	cd $(OTELCOL_DIR) && $(OTELCOL_BUILDER) --config=$(CURDIR)/deploy/otel-collector/builder-config.yaml

$(STATICCHECK_BIN):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(STATSD_EXPORTER_BIN):
	GOBIN=$(dir $@) $(GO_STATIC) install -trimpath -ldflags "$(STRIP)" github.com/prometheus/statsd_exporter@$(STATSD_EXPORTER_VERSION)

# The stack's own NATS (JetStream), never the machine's.
$(NATS_SERVER_BIN):
	GOBIN=$(dir $@) $(GO_STATIC) install -trimpath -ldflags "$(STRIP)" github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# promtool comes with it (same module, same version). -tags remove_all_sd
# leaves out every service-discovery plugin (plugins/*.go are built with
# `!remove_all_sd || enable_<name>_sd`): the project scrapes static targets,
# and the build takes 2 min 47 s instead of 5 min 42 s from an empty Go build cache.
$(PROMETHEUS_BIN):
	@echo "building Prometheus $(PROMETHEUS_MODULE_VERSION) once, without service discovery (11 minutes beside the other tools of a first make local on 2 cores; cached in $(TOOLS))"
	GOBIN=$(dir $@) $(GO_STATIC) install -trimpath -ldflags "$(STRIP)" -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_MODULE_VERSION) \
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
	$(GO) build -mod=mod -trimpath -ldflags "$(STRIP) $(5)" -o $(patsubst %/,%.tmp/,$(4)$(if $(filter %/,$(4)),,.tmp)) $(3) && \
	$(if $(filter %/,$(4)),mv $(4:/=.tmp)/* $(4) && rmdir $(4:/=.tmp),mv $(4).tmp $(4))
endef

# Jaeger's UI is not in the module (it is built with npm into the release
# images): this binary serves the query API, the one Grafana's Jaeger data
# source uses, and a placeholder page at /.
$(JAEGER_BIN):
	@echo "building Jaeger $(JAEGER_VERSION) (module $(JAEGER_MODULE_VERSION)) once (13.5 minutes beside the other tools of a first make local on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/jaegertracing/jaeger,$(JAEGER_MODULE_VERSION),./cmd/jaeger,$@,-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$(JAEGER_VERSION),export CGO_ENABLED=0)

# Alertmanager's web UI is not in the module either (npm builds it into
# ui/app/dist for the release): go install refuses the module for the
# missing embed folder, so it is built inside a copy with a placeholder page
# there. The API, the one Prometheus, Grafana and amtool use, is whole.
# amtool comes with it (same module, same version).
$(ALERTMANAGER_BIN):
	@echo "building Alertmanager $(ALERTMANAGER_VERSION) once (4 minutes beside the other tools of a first make local on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/prometheus/alertmanager,$(ALERTMANAGER_VERSION),./cmd/alertmanager ./cmd/amtool,$(dir $@),$(AM_LDFLAGS),$(AM_PLACEHOLDER_UI))

AM_LDFLAGS = $(foreach v,Version=$(ALERTMANAGER_VERSION:v%=%) Branch=HEAD Revision=$(ALERTMANAGER_VERSION),-X github.com/prometheus/common/version.$(v))
AM_PLACEHOLDER_UI = export CGO_ENABLED=0; for d in elm mantine; do mkdir -p ui/app/dist/$$d; echo '<p>Alertmanager $(ALERTMANAGER_VERSION) built from its Go module: no web UI (npm builds it for the release). The API is at /api/v2/.</p>' > ui/app/dist/$$d/index.html; done

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
	GOBIN=$(dir $(TOXIPROXY_BIN)) $(GO_STATIC) install -trimpath -ldflags "$(STRIP) -X github.com/Shopify/toxiproxy/v2.Version=$(TOXIPROXY_VERSION:v%=%)" \
		github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) github.com/Shopify/toxiproxy/v2/cmd/cli@$(TOXIPROXY_VERSION)

# Debian's MariaDB on a minimal root, with the mysql user (999) the official
# image has; documentation and apt's lists left out.
$(DEBIAN_ROOTFS):
	$(call apt_install,debootstrap,debootstrap)
	@echo "making a Debian $(DEBIAN_SUITE) root with MariaDB by debootstrap once a month (about 5 minutes; cached in $(TOOLS))"
	set -e; root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	debootstrap --variant=minbase --include=mariadb-server-core,mariadb-client $(DEBIAN_SUITE) "$$root" http://deb.debian.org/debian >/dev/null; \
	chroot "$$root" groupadd --system --gid 999 mysql; \
	chroot "$$root" useradd --system --uid 999 --gid 999 --home-dir /var/lib/mysql --no-create-home mysql; \
	rm -rf "$$root"/usr/share/doc/* "$$root"/usr/share/man/* "$$root"/usr/share/locale/* "$$root"/var/cache/apt/* "$$root"/var/lib/apt/lists/* "$$root"/var/lib/mysql/*; \
	mkdir -p $(dir $@); tar -C "$$root" --numeric-owner -cf $@.tmp . && mv $@.tmp $@

busybox: ## make sure busybox is installed (Debian's busybox-static; the stand-in images' shell and wget)
	$(call apt_install,busybox,busybox-static)

$(COMPOSE_BIN):
	@echo "building docker compose $(COMPOSE_VERSION) once (about 2 minutes on 2 cores; cached in $(TOOLS))"
	$(call build_in_module,github.com/docker/compose/v2,$(COMPOSE_VERSION),./cmd,$@,-X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION))

k8s-tools: $(KUSTOMIZE_BIN) $(ETCD_BIN) $(KUBE_APISERVER_BIN) ## install the pinned kustomize, etcd, kube-apiserver and kubectl that check deploy/kubernetes (cached in ~/.cache/failready/tools)

$(KUSTOMIZE_BIN):
	GOBIN=$(dir $@) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Sloth stamps its version into the rules it writes (sloth_version).
$(SLOTH_BIN):
	GOBIN=$(dir $@) $(GO) install -ldflags "-X github.com/slok/sloth/internal/info.Version=$(SLOTH_VERSION)" github.com/slok/sloth/cmd/sloth@$(SLOTH_VERSION)

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
	$(call apt_install,shellcheck,shellcheck)

valgrind: ## make sure valgrind is installed (Debian's valgrind; the perf gate runs under it)
	$(call apt_install,valgrind,valgrind)

mariadb: ## make sure mariadbd is installed (Debian's mariadb-server)
	$(call apt_install,mariadbd,mariadb-server)

jq: ## make sure jq is installed (Debian's jq; the walkthrough scripts read JSON with it)
	$(call apt_install,jq,jq)
