# elmascale build, test and demo targets.
#   make demo       run the main job (see README)
#   make test       every test, with the real components they need
#   make test-unit  the quick inner loop: pure packages, no external components
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/elmascale/elmascale/internal/version.Version=$(VERSION)
UNIT_PKGS := ./policy/... ./config/... ./loop/... ./record/... ./cmd/... ./internal/archtest/...

.PHONY: all build build-static image image-docker test test-unit test-integration lint bench demo setup clean
all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/elmascale ./cmd/elmascale

# build-static is what the image ships: no cgo, no libc, and no plot
# renderer (simulate reports keep their tables; see simulations/report).
build-static:
	CGO_ENABLED=0 $(GO) build -trimpath -tags noplots -ldflags '$(LDFLAGS)' -o $(BIN)/elmascale-static ./cmd/elmascale

# image writes bin/elmascale-image.tar without a container engine: one file
# that `docker load -i`, `ctr -n k8s.io images import` and
# `microk8s ctr image import` all accept (hack/ociimage). image-docker builds
# the same image with the Dockerfile, for a registry.
image: build-static
	$(GO) run ./hack/ociimage --binary $(BIN)/elmascale-static --version $(VERSION) \
		--revision $$(git rev-parse HEAD 2>/dev/null) --out $(BIN)/elmascale-image.tar

image-docker:
	docker build --build-arg VERSION=$(VERSION) -t elmascale:$(VERSION) .

test-unit:
	$(GO) vet ./...
	$(GO) test -count=1 $(UNIT_PKGS)

# setup installs and builds everything the integration tests need; it is
# idempotent and each mk/*.mk fragment adds its prerequisites to it.
setup:

test: setup
	$(GO) vet ./...
	$(GO) vet -tags noplots ./simulations/... ./cmd/...
	$(GO) test -count=1 -timeout 40m ./...

# lint: vet, gofmt, and the architecture tests that keep policy pure (stdlib
# only, no clock, no randomness) and imports pointing towards policy.
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 ./internal/archtest/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./policy/

# demo: with no cluster, `elmascale run` drives the embedded simulated
# ELMA365 cluster; a working day at 1200x takes about 72 seconds.
demo: build
	KUBECONFIG= $(BIN)/elmascale run --demo-scenario=elma365-day --demo-speed=1200 --metrics-bind-address=127.0.0.1:0

clean:
	rm -rf $(BIN)

-include mk/*.mk
