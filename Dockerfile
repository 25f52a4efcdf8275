# syntax=docker/dockerfile:1
# Build: make image   (or: docker build --build-arg VERSION=$(git describe --always) -t elmascale .)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# A static binary: no libc, so it runs on distroless/static. The plot
# renderer (gonum/plot and its embedded fonts) stays out of the in-cluster
# binary: it only serves `elmascale simulate` reports and costs memory.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -tags noplots \
      -ldflags "-s -w -X github.com/elmascale/elmascale/internal/version.Version=${VERSION}" \
      -o /out/elmascale ./cmd/elmascale

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="elmascale" \
      org.opencontainers.image.description="Load-driven autoscaler for ELMA365 and Kubernetes microservice platforms" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/elmascale /elmascale
USER 65532:65532
ENTRYPOINT ["/elmascale"]
CMD ["run"]
