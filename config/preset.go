package config

import deployconfig "github.com/elmascale/elmascale/deploy/config"

// ELMA365Preset returns the embedded ELMA365 preset, deploy/config/elma365.yaml.
func ELMA365Preset() (*Config, error) { return Parse(deployconfig.ELMA365) }

// ELMA365PresetYAML returns the embedded preset's text.
func ELMA365PresetYAML() []byte { return append([]byte(nil), deployconfig.ELMA365...) }
