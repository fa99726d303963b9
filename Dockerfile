# One Dockerfile for both services; docker compose passes SERVICE and VERSION.
#
#   docker build --build-arg SERVICE=service1 --build-arg VERSION=$(git rev-parse --short HEAD) .
#
# Stage 1 builds a static binary; stage 2 is scratch: no shell, no package
# manager, nothing to patch, a non-root user. The binary is its own
# healthcheck ("/app healthcheck"), since there is no curl to call.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG SERVICE
ARG VERSION=dev
RUN test -n "$SERVICE" || { echo "build arg SERVICE is required (service1 or service2)"; exit 1; }
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/app ./${SERVICE}

FROM scratch
COPY --from=build /out/app /app
# 65532 is the conventional "nonroot" user of distroless images.
USER 65532:65532
ENTRYPOINT ["/app"]
