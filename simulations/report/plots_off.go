//go:build noplots

package report

// WritePlots draws nothing in a build without the plot renderer (the
// container image is built with -tags noplots: the in-cluster daemon does not
// carry gonum/plot and its embedded fonts). Reports then hold the score
// tables only.
func WritePlots(dir, prefix string, s *Scenario) ([]Plot, error) { return nil, nil }
