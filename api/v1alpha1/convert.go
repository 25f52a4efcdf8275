package v1alpha1

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FromUnstructured reads a ScalingPolicy the dynamic client returned.
// Only its metadata and status are trusted to decode this way; its spec is
// compiled from the object's JSON by config.Parse, which names every
// problem with its path.
func FromUnstructured(u *unstructured.Unstructured) (*ScalingPolicy, error) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	var p ScalingPolicy
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("ScalingPolicy %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &p, nil
}

// StatusPatch is the JSON patch that makes s the whole status: a JSON
// merge patch would keep fields s leaves out, such as a bottleneck that
// has since cleared.
func StatusPatch(s *ScalingPolicyStatus) ([]byte, error) {
	return json.Marshal([]map[string]any{{"op": "add", "path": "/status", "value": s}})
}
