// Package archtest holds tests that keep the package layout honest: the
// direction of imports and the purity of the policy.
package archtest
