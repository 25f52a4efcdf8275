package config

import "slices"

// PlatformELMA365 enables the ELMA365 rules.
const PlatformELMA365 = "elma365"

// ELMA365SingleInstance are the workloads (Deployments or StatefulSets, by
// name) of the ELMA365 services that cannot run as more than one instance.
var ELMA365SingleInstance = []string{"scheduler", "notifier", "messengers"}

// platform holds what a platform changes in an otherwise generic config:
// the default replica floor and which services are single-instance.
type platform struct {
	elma365 bool
	// defaultMin is the minReplicas a service gets when neither it nor
	// defaults sets one.
	defaultMin int32
}

// compilePlatform reads platform and edition. ELMA365's Enterprise edition
// runs every service at two replicas so that one node may fail; Standard
// runs one.
func compilePlatform(v *validator, f *File) platform {
	p := platform{defaultMin: 1}
	switch f.Platform {
	case "":
	case PlatformELMA365:
		p.elma365 = true
	default:
		v.add("platform", "must be empty or %q", PlatformELMA365)
	}
	switch f.Edition {
	case "", "enterprise":
		if p.elma365 {
			p.defaultMin = 2
		}
	case "standard":
	default:
		v.add("edition", "must be enterprise or standard")
	}
	if f.Edition != "" && !p.elma365 {
		v.add("edition", "is only meaningful with platform %q", PlatformELMA365)
	}
	return p
}

// singleInstance reports whether the platform forbids more than one
// instance of the named workload, and the reason in words.
func (p platform) singleInstance(workload string) (bool, string) {
	if p.elma365 && slices.Contains(ELMA365SingleInstance, workload) {
		return true, "targets " + workload + ", which cannot run as more than one instance in ELMA365"
	}
	return false, ""
}
