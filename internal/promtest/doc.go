// Package promtest starts the real Prometheus server for a test, on a free
// 127.0.0.1 port with its own config and TSDB in a temp dir, scraping
// exporters the test serves.
package promtest
