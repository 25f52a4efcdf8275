# Test control plane: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok and metrics-server, compiled from Go modules by the
# separate module in hack/testcluster and used by internal/testcluster.
#
# A cold build takes about 13 minutes on a 2-core machine, so the target does
# nothing when every binary is present and the stamp matches the pinned
# versions and the module's go.sum. The stamp compares content, not mtimes,
# because a fresh checkout gives every file a new mtime and would otherwise
# force a relink each time.

TESTCLUSTER_DIR     := $(CURDIR)/hack/testcluster
TESTCLUSTER_K8S     := v1.37.2
TESTCLUSTER_STAMP   := $(BIN)/.testcluster-$(TESTCLUSTER_K8S)
TESTCLUSTER_NAMES   := etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server
TESTCLUSTER_BINS    := $(addprefix $(BIN)/,$(TESTCLUSTER_NAMES))
TESTCLUSTER_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(TESTCLUSTER_K8S) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37
# What the stamp must contain: the Kubernetes version plus a digest of the
# module's requirements, so bumping etcd, kwok or metrics-server also rebuilds.
TESTCLUSTER_ID = $(TESTCLUSTER_K8S) $(shell cat $(TESTCLUSTER_DIR)/go.mod $(TESTCLUSTER_DIR)/go.sum | sha256sum | cut -c1-16)

# Integration tests find the binaries here (they default to <repo>/bin too).
export ELMASCALE_TESTBIN := $(BIN)

.PHONY: testcluster testcluster-clean
setup: testcluster

# One go build invocation for all six commands lets them share compiled
# packages; -p 2 keeps a 2-core machine responsive while it runs. No VCS
# stamping: the commit would change every binary's build ID on each commit
# and force a relink for nothing. go build itself skips rewriting a binary
# in $(BIN) whose build ID is already current.
testcluster:
	@want='$(TESTCLUSTER_ID)'; \
	if [ -f '$(TESTCLUSTER_STAMP)' ] && [ "$$(cat '$(TESTCLUSTER_STAMP)')" = "$$want" ] && \
	   ( for b in $(TESTCLUSTER_BINS); do [ -x "$$b" ] || exit 1; done ); then \
		echo "testcluster: binaries in $(BIN) are up to date ($(TESTCLUSTER_K8S))"; \
	else \
		echo "testcluster: building $(TESTCLUSTER_NAMES) into $(BIN) (cold: ~13 min)"; \
		mkdir -p '$(BIN)' && rm -f '$(BIN)'/.testcluster-* && \
		cd '$(TESTCLUSTER_DIR)' && \
		$(GO) build -p 2 -trimpath -buildvcs=false -ldflags '$(TESTCLUSTER_LDFLAGS)' -o '$(BIN)/' \
			./cmd/... sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/metrics-server/cmd/metrics-server && \
		echo "$$want" > '$(TESTCLUSTER_STAMP)'; \
	fi

testcluster-clean:
	rm -f $(TESTCLUSTER_BINS) $(BIN)/.testcluster-*
