// Package importer turns the HorizontalPodAutoscalers and KEDA
// ScaledObjects of a namespace into an equivalent elmascale config, with a
// YAML comment on every setting that has no equivalent, so a team moving
// from HPA or KEDA keeps its bounds, targets and behavior.
package importer
