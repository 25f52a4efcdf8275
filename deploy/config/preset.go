// Package deployconfig carries the shipped configuration presets so the
// binary embeds exactly the files that deploy/ installs.
package deployconfig

import _ "embed"

// ELMA365 is deploy/config/elma365.yaml.
//
//go:embed elma365.yaml
var ELMA365 []byte
