package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// podState is what the utilization calculation needs of one pod, for both
// resources at once.
type podState struct {
	sample policy.PodSample // resource-independent fields filled in
	// usage and request by resource name (millicores, bytes). A request
	// of 0 means some container has none, which the policy reports.
	usage   map[string]int64
	request map[string]int64
}

// workloadPods is a service's pods, or why they are unknown.
type workloadPods struct {
	pods []podState
	// missing explains a workload that was not found.
	missing string
}

// kubeSource lists a namespace's workloads, pods and pod metrics: four
// requests at most per tick, whatever the number of services.
type kubeSource struct {
	core    kubernetes.Interface
	metrics metricsclient.Interface
	timeout time.Duration
	m       *metrics
}

// listOptions serve lists from the API server's watch cache: a tick does not
// need a quorum read of every pod.
var cachedList = metav1.ListOptions{ResourceVersion: "0"}

// collect groups the namespace's pods by each service's workload selector
// and joins them with their metrics.k8s.io samples.
func (s *kubeSource) collect(ctx context.Context, namespace string, services []config.Service) (map[string]*workloadPods, error) {
	needDeploy, needSTS := false, false
	for _, svc := range services {
		switch svc.Target.Kind {
		case "StatefulSet":
			needSTS = true
		default:
			needDeploy = true
		}
	}

	var (
		wg                 sync.WaitGroup
		deploys            *appsv1.DeploymentList
		sets               *appsv1.StatefulSetList
		pods               *corev1.PodList
		podMetrics         *metricsv1beta1.PodMetricsList
		errDep, errSTS     error
		errPods, errMetric error
	)
	call := func(dst *error, what string, fn func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			start := time.Now()
			err := fn(qctx)
			s.m.queries.WithLabelValues(SourceKubernetes).Inc()
			s.m.duration.WithLabelValues(SourceKubernetes).Observe(time.Since(start).Seconds())
			if err != nil {
				*dst = fmt.Errorf("list %s in namespace %q: %w", what, namespace, err)
			}
		}()
	}
	if needDeploy {
		call(&errDep, "deployments", func(ctx context.Context) (err error) {
			deploys, err = s.core.AppsV1().Deployments(namespace).List(ctx, cachedList)
			return err
		})
	}
	if needSTS {
		call(&errSTS, "statefulsets", func(ctx context.Context) (err error) {
			sets, err = s.core.AppsV1().StatefulSets(namespace).List(ctx, cachedList)
			return err
		})
	}
	call(&errPods, "pods", func(ctx context.Context) (err error) {
		pods, err = s.core.CoreV1().Pods(namespace).List(ctx, cachedList)
		return err
	})
	call(&errMetric, "metrics.k8s.io pods", func(ctx context.Context) (err error) {
		podMetrics, err = s.metrics.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{})
		return err
	})
	wg.Wait()
	if errMetric != nil && apierrors.IsNotFound(errMetric) {
		errMetric = fmt.Errorf("%w (is metrics-server installed?)", errMetric)
	}
	for _, err := range []error{errDep, errSTS, errPods, errMetric} {
		if err != nil {
			reason := kubeReason(err)
			s.m.errors.WithLabelValues(SourceKubernetes, reason).Inc()
			return nil, &SourceError{Source: SourceKubernetes, Reason: reason, Err: err}
		}
	}

	selectors := make(map[config.Target]labels.Selector)
	if deploys != nil {
		for i := range deploys.Items {
			d := &deploys.Items[i]
			selectors[config.Target{Kind: "Deployment", Name: d.Name}] = selectorOf(d.Spec.Selector)
		}
	}
	if sets != nil {
		for i := range sets.Items {
			st := &sets.Items[i]
			selectors[config.Target{Kind: "StatefulSet", Name: st.Name}] = selectorOf(st.Spec.Selector)
		}
	}
	byPod := make(map[string]*metricsv1beta1.PodMetrics, len(podMetrics.Items))
	for i := range podMetrics.Items {
		byPod[podMetrics.Items[i].Name] = &podMetrics.Items[i]
	}
	states := make([]podState, len(pods.Items))
	for i := range pods.Items {
		states[i] = podStateOf(&pods.Items[i], byPod[pods.Items[i].Name])
	}

	out := make(map[string]*workloadPods, len(services))
	for _, svc := range services {
		sel, ok := selectors[svc.Target]
		if !ok {
			out[svc.Name] = &workloadPods{missing: fmt.Sprintf("kubernetes: %s %s not found in namespace %q", svc.Target.Kind, svc.Target.Name, namespace)}
			continue
		}
		wp := &workloadPods{}
		for i := range pods.Items {
			if sel.Matches(labels.Set(pods.Items[i].Labels)) {
				wp.pods = append(wp.pods, states[i])
			}
		}
		out[svc.Name] = wp
	}
	return out, nil
}

// selectorOf converts a workload selector. A malformed or empty selector
// matches nothing: claiming every pod of the namespace would be worse.
func selectorOf(ls *metav1.LabelSelector) labels.Selector {
	if ls == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return labels.Nothing()
	}
	return sel
}

// podStateOf builds a pod's sample the way the HPA replica calculator reads
// pods: phase, deletion, the PodReady condition, start time, and the sum of
// container requests (or the pod-level requests when set).
func podStateOf(pod *corev1.Pod, pm *metricsv1beta1.PodMetrics) podState {
	ps := podState{
		sample: policy.PodSample{
			Name:     pod.Name,
			Phase:    string(pod.Status.Phase),
			Deleting: pod.DeletionTimestamp != nil,
		},
		usage:   map[string]int64{},
		request: map[string]int64{},
	}
	if pod.Status.StartTime != nil {
		ps.sample.StartTime = pod.Status.StartTime.Time
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			ps.sample.ReadyKnown = true
			ps.sample.Ready = c.Status == corev1.ConditionTrue
			ps.sample.ReadyTransition = c.LastTransitionTime.Time
		}
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		ps.request[string(res)] = podRequest(pod, res)
	}
	if pm != nil {
		ps.sample.HasMetric = true
		ps.sample.MetricTime = pm.Timestamp.Time
		ps.sample.MetricWindow = pm.Window.Duration
		var cpu, mem int64
		for _, c := range pm.Containers {
			if q, ok := c.Usage[corev1.ResourceCPU]; ok {
				cpu += q.MilliValue()
			}
			if q, ok := c.Usage[corev1.ResourceMemory]; ok {
				mem += q.Value()
			}
		}
		ps.usage[policy.ResourceCPU] = cpu
		ps.usage[policy.ResourceMemory] = mem
	}
	return ps
}

// podRequest is the pod's request for a resource: pod-level requests when
// the pod sets them, else the sum over its containers. It is 0 when any
// container lacks the request, as HPA refuses to guess one.
func podRequest(pod *corev1.Pod, res corev1.ResourceName) int64 {
	if pod.Spec.Resources != nil {
		if q, ok := pod.Spec.Resources.Requests[res]; ok {
			return amount(res, q.MilliValue(), q.Value())
		}
	}
	var sum int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Requests[res]
		if !ok {
			return 0
		}
		sum += amount(res, q.MilliValue(), q.Value())
	}
	return sum
}

func amount(res corev1.ResourceName, milli, whole int64) int64 {
	if res == corev1.ResourceCPU {
		return milli
	}
	return whole
}

// utilizationObservation turns a service's pods into one resource's
// observation. Its time is the oldest pod sample, so one lagging pod makes
// the whole signal look as old as it is.
func utilizationObservation(wp *workloadPods, resource string) policy.Observation {
	if wp.missing != "" {
		return policy.Observation{Status: policy.StatusMissing, Error: wp.missing}
	}
	if len(wp.pods) == 0 {
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: the workload has no pods"}
	}
	obs := policy.Observation{Status: policy.StatusOK, Pods: make([]policy.PodSample, len(wp.pods))}
	withMetric := 0
	for i, p := range wp.pods {
		ps := p.sample
		ps.Request = p.request[resource]
		if ps.HasMetric {
			ps.Usage = p.usage[resource]
			withMetric++
			if obs.Time.IsZero() || ps.MetricTime.Before(obs.Time) {
				obs.Time = ps.MetricTime
			}
		}
		obs.Pods[i] = ps
	}
	if withMetric == 0 {
		obs.Status = policy.StatusMissing
		obs.Error = "metrics.k8s.io: no pod of the workload has a sample yet"
	}
	return obs
}

// kubeReason names a Kubernetes client error for the reason label.
func kubeReason(err error) string {
	switch {
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return ReasonAuth
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case apierrors.IsNotFound(err), apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsTooManyRequests(err):
		return ReasonHTTPStatus
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return ReasonHTTPStatus
	}
	return classifyTransportError(err)
}
