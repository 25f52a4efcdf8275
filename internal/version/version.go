// Package version holds the build's version string, stamped by the linker.
package version

// Version is set with -ldflags "-X github.com/elmascale/elmascale/internal/version.Version=...".
var Version = "dev"
