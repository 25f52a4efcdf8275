package simulations

import (
	"context"
	"testing"
	"time"
)

// Verifies that every policy runs an hour of the working day and that the
// static baseline never scales.
func TestSmokeHourOfDay(t *testing.T) {
	sc, err := LoadScenario("scenarios/elma365-day.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = time.Hour
	for _, name := range PolicyNames() {
		p, err := BuildPolicy(sc, name, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := Run(context.Background(), sc, p, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Events == 0 || r.Scores.ReplicaSeconds <= 0 {
			t.Errorf("%s: nothing simulated: %+v", name, r.Scores)
		}
		if name == PolicyStatic && r.Scores.ScaleActions != 0 {
			t.Errorf("static scaled %d times", r.Scores.ScaleActions)
		}
	}
}
