# rcbridge and rcsim in one small image: static binaries on distroless.
#
#   docker build -t rcbridge .
#   docker run --rm -v $PWD/rcbridge.toml:/etc/rcbridge/rcbridge.toml:ro -p 4844:4844 -p 9844:9844 rcbridge
#
# The entrypoint is rcbridge (default: -config /etc/rcbridge/rcbridge.toml);
# the simulator runs with --entrypoint /usr/local/bin/rcsim. Generated
# certificates and the embedded bus's data go under /var/lib/rcbridge.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/bin/ ./cmd/rcbridge ./cmd/rcsim \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/rcbridge /out/bin/rcsim /usr/local/bin/
COPY --from=build --chown=nonroot:nonroot /out/state /var/lib/rcbridge
WORKDIR /var/lib/rcbridge
USER nonroot:nonroot
# 4844: reverse connections from OPC UA servers; 9844: /metrics, /healthz, /readyz, /api/v1/servers
EXPOSE 4844 9844
ENTRYPOINT ["/usr/local/bin/rcbridge"]
CMD ["-config", "/etc/rcbridge/rcbridge.toml"]
