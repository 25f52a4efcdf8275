package collector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

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
	// usage and request by resource (resourceIndex: millicores, bytes). A
	// request of 0 means some container has none, which the policy reports.
	usage   [2]int64
	request [2]int64
}

// resourceIndex is a resource's place in podState's arrays; -1 for one
// the source does not read.
func resourceIndex(resource string) int {
	switch resource {
	case policy.ResourceCPU:
		return 0
	case policy.ResourceMemory:
		return 1
	}
	return -1
}

// workloadPods is a service's pods, or why they are unknown.
type workloadPods struct {
	pods []podState
	// missing explains a workload that was not found.
	missing string
}

// kubeSource reads a namespace's workloads and pods from informer caches
// and its pod metrics with one request per tick. The informers start at
// the first collection that needs them, so a config without utilization or
// pods signals costs no watch and no cache.
type kubeSource struct {
	core    kubernetes.Interface
	metrics metricsclient.Interface
	timeout time.Duration
	m       *metrics

	mu    sync.Mutex
	cache *kubeCache
}

// collect groups the namespace's pods by each service's workload selector
// and joins them with their metrics.k8s.io samples. metrics.k8s.io is asked
// only when some service has a utilization signal; a pods signal reads its
// values from Prometheus.
func (s *kubeSource) collect(ctx context.Context, namespace string, services []config.Service) (map[string]*workloadPods, error) {
	needDeploy, needSTS, needMetrics := false, false, false
	for _, svc := range services {
		switch svc.Target.Kind {
		case "StatefulSet":
			needSTS = true
		default:
			needDeploy = true
		}
		for _, sg := range svc.Signals {
			if sg.Kind == policy.KindUtilization {
				needMetrics = true
			}
		}
	}
	kc := s.cacheFor(namespace)

	var (
		wg                 sync.WaitGroup
		podMetrics         *metricsv1beta1.PodMetricsList
		errMetric, errSync error
	)
	if needMetrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			start := time.Now()
			var err error
			podMetrics, err = s.metrics.MetricsV1beta1().PodMetricses(namespace).List(qctx, metav1.ListOptions{})
			s.m.queries.WithLabelValues(SourceKubernetes).Inc()
			s.m.duration.WithLabelValues(SourceKubernetes).Observe(time.Since(start).Seconds())
			if err != nil {
				if apierrors.IsNotFound(err) {
					err = fmt.Errorf("%w (is metrics-server installed?)", err)
				}
				errMetric = fmt.Errorf("list metrics.k8s.io pods in namespace %q: %w", namespace, err)
			}
		}()
	}
	deploys, sets, pods := kc.informers(needDeploy, needSTS)
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	errSync = kc.waitSynced(sctx, needDeploy, needSTS)
	cancel()
	wg.Wait()
	for _, err := range []error{errSync, errMetric} {
		if err != nil {
			reason := kubeReason(err)
			s.m.errors.WithLabelValues(SourceKubernetes, reason).Inc()
			return nil, &SourceError{Source: SourceKubernetes, Reason: reason, Err: err}
		}
	}

	var byPod map[string]*metricsv1beta1.PodMetrics
	if podMetrics != nil {
		byPod = make(map[string]*metricsv1beta1.PodMetrics, len(podMetrics.Items))
		for i := range podMetrics.Items {
			byPod[podMetrics.Items[i].Name] = &podMetrics.Items[i]
		}
	}
	out := make(map[string]*workloadPods, len(services))
	for _, svc := range services {
		store := deploys
		if svc.Target.Kind == "StatefulSet" {
			store = sets
		}
		obj, found, _ := store.GetIndexer().GetByKey(namespace + "/" + svc.Target.Name)
		if !found {
			out[svc.Name] = &workloadPods{missing: fmt.Sprintf("kubernetes: %s %s not found in namespace %q", svc.Target.Kind, svc.Target.Name, namespace)}
			continue
		}
		wp := &workloadPods{}
		sel := selectorOf(workloadSelector(obj))
		for _, o := range candidates(pods.GetIndexer(), sel) {
			p, ok := o.(*corev1.Pod)
			if !ok || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			wp.pods = append(wp.pods, podStateOf(p, byPod[p.Name]))
		}
		sort.Slice(wp.pods, func(i, j int) bool { return wp.pods[i].sample.Name < wp.pods[j].sample.Name })
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
	ps.request = [2]int64{podRequest(pod, corev1.ResourceCPU), podRequest(pod, corev1.ResourceMemory)}
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
		ps.usage = [2]int64{cpu, mem}
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
	r := resourceIndex(resource)
	if r < 0 {
		return policy.Observation{Status: policy.StatusInvalid, Error: fmt.Sprintf("kubernetes: resource %q is not read from metrics.k8s.io", resource)}
	}
	obs := policy.Observation{Status: policy.StatusOK, Pods: make([]policy.PodSample, len(wp.pods))}
	withMetric := 0
	for i, p := range wp.pods {
		ps := p.sample
		ps.Request = p.request[r]
		if ps.HasMetric {
			ps.Usage = p.usage[r]
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
