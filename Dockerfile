# One Dockerfile for every image; each is a target (compose's build.target):
#
#   docker build --target service1 --build-arg VERSION=$(git rev-parse --short HEAD) .
#   docker buildx build --platform linux/amd64,linux/arm64 --target service1 .
#
# Fast: the build stage compiles every binary in one `go build` (the shared
# dependencies once, not once per service), runs on the builder's own
# platform and cross-compiles for the target's (no emulation on an arm64
# laptop or for a multi-arch image), and keeps Go's module and build caches
# in BuildKit cache mounts, so a change recompiles only what it touches.
# The images are scratch: no shell, no package manager, nothing to patch, a
# non-root user. A binary is its own healthcheck ("/app healthcheck").
# Cache mounts and $BUILDPLATFORM need BuildKit, the default builder since
# Docker Engine 23 and in Docker Desktop.
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./service1 ./service2 ./worker ./cmd/loadgen ./cmd/alertlog ./cmd/lokidoor

FROM scratch AS runtime
# 65532 is the conventional "nonroot" user of distroless images.
USER 65532:65532
ENTRYPOINT ["/app"]

FROM runtime AS service1
COPY --from=build /out/service1 /app

FROM runtime AS service2
COPY --from=build /out/service2 /app

FROM runtime AS worker
COPY --from=build /out/worker /app

FROM runtime AS loadgen
COPY --from=build /out/loadgen /app

FROM runtime AS alertlog
COPY --from=build /out/alertlog /app

# Loki's door (cmd/lokidoor) in Loki's place, for the compose smoke on a
# machine where Loki (AGPL) is never built (compose.smoke.yaml): Loki's
# path, user and command line, so the loki service runs it unchanged.
FROM scratch AS lokidoor
COPY --from=build /out/lokidoor /usr/bin/loki
USER 10001
ENTRYPOINT ["/usr/bin/loki"]
CMD ["-config.file=/etc/loki/local-config.yaml"]
