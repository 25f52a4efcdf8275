// Package v1alpha1 is the ScalingPolicy resource, elmascale.io/v1alpha1:
// a managed namespace's configuration as a Kubernetes object (its spec is
// the configuration file's schema, config.File) and the decisions made
// from it (its status). The CRD in deploy/ is generated from these types.
//
// +kubebuilder:object:generate=false
// +groupName=elmascale.io
package v1alpha1
