package doctor

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/config"
)

// AccessReviewer answers whether the checked subject may do one thing.
type AccessReviewer interface {
	Allowed(ctx context.Context, attr authorizationv1.ResourceAttributes) (allowed bool, reason string, err error)
}

// SelfAccess asks the API server about the caller itself
// (SelfSubjectAccessReview), which every authenticated client may do: the
// daemon checks its own ServiceAccount this way.
type SelfAccess struct{ Client kubernetes.Interface }

// Allowed implements AccessReviewer.
func (s SelfAccess) Allowed(ctx context.Context, attr authorizationv1.ResourceAttributes) (bool, string, error) {
	r, err := s.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
		&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr}}, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return r.Status.Allowed, r.Status.Reason, nil
}

// ServiceAccountAccess asks about a ServiceAccount other than the caller
// (SubjectAccessReview, which needs create on subjectaccessreviews, as a
// cluster administrator has): `elmascale doctor` run from a workstation
// checks the daemon's account, not the administrator's.
type ServiceAccountAccess struct {
	Client          kubernetes.Interface
	Namespace, Name string
}

// Subject is the ServiceAccount's user name.
func (s ServiceAccountAccess) Subject() string {
	return "system:serviceaccount:" + s.Namespace + ":" + s.Name
}

// Allowed implements AccessReviewer.
func (s ServiceAccountAccess) Allowed(ctx context.Context, attr authorizationv1.ResourceAttributes) (bool, string, error) {
	r, err := s.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &attr,
		User:               s.Subject(),
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + s.Namespace, "system:authenticated"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return r.Status.Allowed, r.Status.Reason, nil
}

// permission is one resource elmascale needs verbs on.
type permission struct {
	namespace, group, resource, subresource string
	verbs                                   []string
	why                                     string
	// advised: a missing grant is a warning, not a problem (needed only
	// once the mode changes).
	advised bool
	// fixFile is the shipped RBAC that grants it (default
	// deploy/base/rbac.yaml).
	fixFile string
}

// where is " in <namespace>", or " cluster-wide" for a cluster-scoped
// resource.
func (p permission) where() string {
	if p.namespace == "" {
		return " cluster-wide"
	}
	return " in " + p.namespace
}

// needs lists what elmascale does in the cluster, as deploy/base/rbac.yaml
// grants it.
func needs(cfg *config.Config, opts Options) []permission {
	ns := cfg.Namespace
	out := []permission{
		{namespace: ns, group: "apps", resource: "deployments", verbs: []string{"get", "list", "watch"}, why: "read the targets"},
		{namespace: ns, group: "apps", resource: "statefulsets", verbs: []string{"get", "list", "watch"}, why: "read the targets"},
		{namespace: ns, group: "apps", resource: "deployments", subresource: "scale", verbs: []string{"get", "update"}, why: "write replicas in apply mode", advised: !opts.Apply},
		{namespace: ns, group: "apps", resource: "statefulsets", subresource: "scale", verbs: []string{"get", "update"}, why: "write replicas in apply mode", advised: !opts.Apply},
		{namespace: ns, group: "autoscaling", resource: "horizontalpodautoscalers", verbs: []string{"get", "list", "watch"}, why: "hand off what an HPA scales"},
		{namespace: ns, group: "keda.sh", resource: "scaledobjects", verbs: []string{"get", "list", "watch"}, why: "hand off what KEDA scales"},
		{namespace: ns, group: "", resource: "pods", verbs: []string{"list", "watch"}, why: "utilization and readiness of the targets' pods"},
		{namespace: ns, group: "metrics.k8s.io", resource: "pods", verbs: []string{"list"}, why: "CPU and memory from metrics.k8s.io"},
		{namespace: ns, group: "", resource: "events", verbs: []string{"create", "patch"}, why: "Events on the targets (Recommended, ScaledUp, HandedOff)"},
	}
	if opts.AnnotateRecommendations {
		out = append(out, permission{namespace: ns, group: "apps", resource: "deployments", verbs: []string{"patch"}, why: "the recommended-replicas annotation (deploy/rbac/annotate-recommendations.yaml)"})
	}
	if opts.MetricsAuth {
		out = append(out,
			permission{group: "authentication.k8s.io", resource: "tokenreviews", verbs: []string{"create"}, why: "check the tokens of /metrics and /api/v1/* callers (--metrics-auth)", fixFile: "deploy/base/metrics-auth.yaml"},
			permission{group: "authorization.k8s.io", resource: "subjectaccessreviews", verbs: []string{"create"}, why: "check that /metrics and /api/v1/* callers may read them (--metrics-auth)", fixFile: "deploy/base/metrics-auth.yaml"})
	}
	if opts.PolicyNamespace != "" {
		out = append(out,
			permission{namespace: opts.PolicyNamespace, group: "elmascale.io", resource: "scalingpolicies", verbs: []string{"get", "list", "watch"}, why: "take the config from the ScalingPolicy (run --policy)"},
			permission{namespace: opts.PolicyNamespace, group: "elmascale.io", resource: "scalingpolicies", subresource: "status", verbs: []string{"get", "update", "patch"}, why: "publish every decision in the ScalingPolicy's status"})
	}
	if opts.LeaseNamespace != "" {
		out = append(out, permission{namespace: opts.LeaseNamespace, group: "coordination.k8s.io", resource: "leases", verbs: []string{"get", "create", "update"}, why: "leader election"})
	}
	return out
}

// resourceName is the resource as kubectl names it: pods, deployments.apps/scale.
func (p permission) resourceName() string {
	r := p.resource
	if p.group != "" {
		r += "." + p.group
	}
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	return r
}

func (p permission) String() string { return strings.Join(p.verbs, ",") + " " + p.resourceName() }

// permissions checks every need with one access review per verb.
func permissions(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	subject := opts.Subject
	if subject == "" {
		subject = "elmascale's account"
	}
	for _, p := range needs(cfg, opts) {
		c := Check{Kind: KindPermission, Name: p.String() + p.where()}
		var denied []string
		var failure error
		for _, v := range p.verbs {
			ok, _, err := opts.Access.Allowed(ctx, authorizationv1.ResourceAttributes{
				Namespace: p.namespace, Group: p.group, Resource: p.resource, Subresource: p.subresource, Verb: v})
			if err != nil {
				failure = err
				break
			}
			if !ok {
				denied = append(denied, v)
			}
		}
		switch {
		case failure != nil:
			c.Severity, c.Detail = SeverityProblem, "access review failed: "+failure.Error()
			c.Fix = "the API server did not answer the access review; check the connection"
		case len(denied) == 0:
			c.Severity, c.Detail = SeverityOK, "allowed: "+p.why
		default:
			c.Severity = SeverityProblem
			if p.advised {
				c.Severity = SeverityWarning
			}
			res := p.resourceName()
			c.Detail = fmt.Sprintf("%s may not %s %s (needed to %s)", subject, strings.Join(denied, ", "), res, p.why)
			switch {
			case p.fixFile != "" && p.namespace == "":
				c.Fix = fmt.Sprintf("bind the ClusterRole of %s to %s with a ClusterRoleBinding (the chart does with metricsAuth.enabled); check with `kubectl auth can-i %s %s --as=%s`",
					p.fixFile, subject, denied[0], res, subjectForCanI(opts.Subject))
			default:
				c.Fix = fmt.Sprintf("bind the chart's ClusterRole (deploy/base/rbac.yaml) to %s in namespace %s; check with `kubectl auth can-i %s %s -n %s --as=%s`",
					subject, p.namespace, denied[0], res, p.namespace, subjectForCanI(opts.Subject))
			}
		}
		r.add(c)
	}
}

func subjectForCanI(s string) string {
	if s == "" {
		return "system:serviceaccount:elmascale:elmascale"
	}
	return s
}
