// Package config turns a YAML configuration file into a validated policy
// spec plus the signal sources and scale targets that feed and apply it.
package config
