package config

import "github.com/elmascale/elmascale/deploy"

// ELMA365Preset returns the embedded ELMA365 preset, deploy/base/elma365.yaml.
func ELMA365Preset() (*Config, error) { return Parse(deploy.ELMA365Preset) }

// ELMA365PresetYAML returns the embedded preset's text.
func ELMA365PresetYAML() []byte { return append([]byte(nil), deploy.ELMA365Preset...) }
