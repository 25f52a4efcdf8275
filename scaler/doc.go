// Package scaler reads the replicas of scale targets from informer caches and
// acts on decisions through the scale subresource: it writes them in apply
// mode, publishes them as recommendations in dry-run, and hands off targets
// that an HPA, a KEDA ScaledObject or a pause annotation already controls.
package scaler
