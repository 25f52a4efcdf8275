// Package collector samples every configured signal once per tick from a
// real Prometheus, the RabbitMQ management API and metrics.k8s.io, each
// source behind its own circuit breaker, and reports what it could not read
// as failed or missing observations rather than as zero load.
package collector
