# The ScalingPolicy CRD is generated from api/v1alpha1 and the config
# file's types its spec is, by controller-gen pinned in hack/tools (its own
# module, so the generator's dependencies never reach the binary's).
#   make crd   regenerate deploy/base/crd and the chart's copy; a test in
#              api/v1alpha1 fails when the committed CRD is not the generated one
CONTROLLER_GEN := $(BIN)/controller-gen
CRD_FILE := elmascale.io_scalingpolicies.yaml

.PHONY: crd

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	$(GO) build -C hack/tools -o $(CONTROLLER_GEN) sigs.k8s.io/controller-tools/cmd/controller-gen

crd: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=deploy/base/crd
	cp deploy/base/crd/$(CRD_FILE) deploy/helm/elmascale/crds/$(CRD_FILE)
