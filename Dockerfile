# syntax=docker/dockerfile:1
# cfmint's image: one static binary under two names, /cfmint-main and /cfmint-post, which is how
# the action tells its main phase from its post phase.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/cfmint/cfmint/internal/cli.Version=${VERSION}" -o /out/cfmint . \
 && ln -s cfmint /out/cfmint-main \
 && ln -s cfmint /out/cfmint-post

# distroless/static: CA certificates, /etc/passwd and tzdata, no shell. No USER: GitHub runs
# container actions as root and documents that USER must not be set.
FROM gcr.io/distroless/static-debian12
ARG VERSION=dev
LABEL org.opencontainers.image.source="https://github.com/cfmint/cfmint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.description="Mint a least-privilege, IP-pinned, short-lived Cloudflare API token for a CI job"
COPY --from=build /out/ /
ENTRYPOINT ["/cfmint-main"]
