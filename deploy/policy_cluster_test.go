package deploy_test

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/internal/testcluster"
)

// Verifies on the real API server that the shipped RBAC grows by exactly
// the ScalingPolicy and its status: the ServiceAccount may read policies
// and write their status in the ELMA365 namespace, and may not create,
// change or delete a policy's spec, nor touch policies anywhere else.
func TestRBACForScalingPolicies(t *testing.T) {
	c := testcluster.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range []string{"elmascale", "elma365"} {
		if err := c.CreateNamespace(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	a := newApplier(t, c.AdminConfig)
	for _, u := range renderUnstructured(t, "overlays/apply") {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "Role", "RoleBinding":
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	may := func(ns, verb, sub string) bool {
		t.Helper()
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:elmascale:elmascale",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:elmascale", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "elmascale.io",
				Resource: "scalingpolicies", Subresource: sub},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, verb := range []string{"get", "list", "watch"} {
		if !may("elma365", verb, "") {
			t.Errorf("the ServiceAccount may not %s scalingpolicies in elma365", verb)
		}
	}
	for _, verb := range []string{"get", "update", "patch"} {
		if !may("elma365", verb, "status") {
			t.Errorf("the ServiceAccount may not %s scalingpolicies/status in elma365", verb)
		}
	}
	for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection"} {
		if may("elma365", verb, "") {
			t.Errorf("the ServiceAccount may %s scalingpolicies: it must never change a policy's spec", verb)
		}
	}
	for _, ns := range []string{"default", "elmascale"} {
		for _, tc := range []struct{ verb, sub string }{{"get", ""}, {"list", ""}, {"patch", "status"}} {
			if may(ns, tc.verb, tc.sub) {
				t.Errorf("the ServiceAccount may %s scalingpolicies%s in %s: only the ELMA365 namespace is granted", tc.verb, map[bool]string{true: "/" + tc.sub}[tc.sub != ""], ns)
			}
		}
	}
}
