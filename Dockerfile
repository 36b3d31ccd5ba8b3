# syntax=docker/dockerfile:1
# cfmint's image: one static binary under three names. /cfmint-main and /cfmint-post are how the
# action tells its main phase from its post phase (action.yml's entrypoint and post-entrypoint);
# /cfmint is the command-line tool.
#
# e2e/image_test.go reads this file: it builds the binary with the flags of the `go build` line below,
# lays out what the final stage copies, and runs it in a chroot. Change them together.
#
# Base images are pinned by digest (the tag is kept for readers); Dependabot's docker ecosystem
# proposes new digests.

# The build stage runs on the build machine's own platform and cross-compiles, so a multi-platform
# build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags="-s -w -X github.com/cfmint/cfmint/internal/cli.Version=${VERSION}" -o /out/cfmint . \
 && ln -s cfmint /out/cfmint-main \
 && ln -s cfmint /out/cfmint-post

# distroless/static (root variant): CA certificates, /etc/passwd, tzdata and /tmp; no shell, no
# package manager. No USER: GitHub runs container actions as root and documents that USER must
# not be set.
FROM gcr.io/distroless/static-debian12:latest@sha256:d75cdd72874d4790092fcb1b058493ecf6bb5bf2b2b897045b00ff01d91843f2
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cfmint" \
      org.opencontainers.image.description="Mint a least-privilege, IP-pinned, short-lived Cloudflare API token for a CI job, and revoke it when the job ends" \
      org.opencontainers.image.source="https://github.com/cfmint/cfmint" \
      org.opencontainers.image.url="https://github.com/cfmint/cfmint" \
      org.opencontainers.image.documentation="https://github.com/cfmint/cfmint#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /
# The CLI by default (docker run IMAGE serve --policy ... runs the broker); action.yml names the
# phases' entrypoints, /cfmint-main and /cfmint-post, which the runner passes as --entrypoint.
ENTRYPOINT ["/cfmint"]
