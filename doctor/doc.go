// Package doctor checks that elmascale can do its job on a cluster: every
// signal of the config resolves for its own service, every permission is
// granted, and which targets are handed off or break their pin; each
// problem comes with its fix. `elmascale doctor` prints the report and the
// daemon logs it once at start.
package doctor
