package importer

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/scaler"
)

// Options say where to read from.
type Options struct {
	Client kubernetes.Interface
	// Dynamic reads ScaledObjects; nil skips them.
	Dynamic   dynamic.Interface
	Namespace string
	// PolicyName, when set, makes the result the ScalingPolicy of that
	// name in Namespace (for kubectl apply) rather than a config file.
	PolicyName string
}

// Result is the generated config and what went into it.
type Result struct {
	// YAML is the config file, or the ScalingPolicy with PolicyName,
	// comments included; config.Parse accepts it.
	YAML []byte
	// Config is YAML parsed and validated.
	Config *config.Config
	// HPAs and ScaledObjects are how many objects were read.
	HPAs, ScaledObjects int
	// Notes are the settings that had no equivalent (also in YAML comments).
	Notes []string
}

// Import reads the autoscalers of opts.Namespace and returns the config.
// A namespace with no autoscaler is an error: the config would have no
// services, which config.Parse rejects.
func Import(ctx context.Context, opts Options) (*Result, error) {
	hpas, err := opts.Client.AutoscalingV2().HorizontalPodAutoscalers(opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list HorizontalPodAutoscalers in %s: %w", opts.Namespace, err)
	}
	var sos []unstructured.Unstructured
	if opts.Dynamic != nil {
		list, err := opts.Dynamic.Resource(scaler.ScaledObjectGVR).Namespace(opts.Namespace).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// No KEDA CRD in this cluster: nothing to import from it.
		case err != nil:
			return nil, fmt.Errorf("list ScaledObjects in %s: %w", opts.Namespace, err)
		default:
			sos = list.Items
		}
	}
	b := newBuilder(opts.Namespace)
	for _, so := range sortByName(sos) {
		b.scaledObject(so)
	}
	sort.Slice(hpas.Items, func(i, j int) bool { return hpas.Items[i].Name < hpas.Items[j].Name })
	for i := range hpas.Items {
		b.hpa(&hpas.Items[i])
	}
	if len(b.services) == 0 {
		return nil, fmt.Errorf("namespace %s has no HorizontalPodAutoscaler or ScaledObject to import", opts.Namespace)
	}
	data, err := b.render(len(hpas.Items), len(sos))
	if err != nil {
		return nil, err
	}
	if opts.PolicyName != "" {
		if data, err = config.AsResource(data, opts.PolicyName, opts.Namespace); err != nil {
			return nil, fmt.Errorf("generated config as a ScalingPolicy (a bug in import): %w", err)
		}
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("generated config does not validate (a bug in import): %w\n%s", err, data)
	}
	return &Result{YAML: data, Config: cfg, HPAs: len(hpas.Items), ScaledObjects: len(sos), Notes: b.notes}, nil
}

func sortByName(l []unstructured.Unstructured) []unstructured.Unstructured {
	sort.Slice(l, func(i, j int) bool { return l[i].GetName() < l[j].GetName() })
	return l
}

// service is one service being built.
type service struct {
	name    string
	node    *yaml.Node // mapping
	source  string     // "HorizontalPodAutoscaler/x"
	signals *yaml.Node // sequence
}

type builder struct {
	namespace string
	services  []*service
	byTarget  map[string]*service
	metrics   *yaml.Node // mapping, may stay empty
	notes     []string
}

func newBuilder(ns string) *builder {
	return &builder{namespace: ns, byTarget: map[string]*service{}, metrics: mapping()}
}

// start opens the service for a target, or returns nil (with a note) when
// another autoscaler already claimed that target.
func (b *builder) start(source, kind, name string) *service {
	if kind == "" {
		kind = "Deployment"
	}
	key := kind + "/" + name
	if prev, ok := b.byTarget[key]; ok {
		b.note(prev, fmt.Sprintf("%s also scales %s; it was not imported (one autoscaler per target)", source, key))
		return nil
	}
	s := &service{name: serviceName(name, b.byTarget), node: mapping(), source: source, signals: &yaml.Node{Kind: yaml.SequenceNode}}
	s.node.HeadComment = "from " + source
	if kind != "Deployment" || s.name != name {
		t := mapping()
		put(t, "kind", str(kind))
		put(t, "name", str(name))
		t.Style = yaml.FlowStyle
		put(s.node, "target", t)
	}
	b.byTarget[key] = s
	b.services = append(b.services, s)
	return s
}

// serviceName is the target's name, made unique.
func serviceName(name string, taken map[string]*service) string {
	used := func(n string) bool {
		for _, s := range taken {
			if s.name == n {
				return true
			}
		}
		return false
	}
	out := name
	for i := 2; used(out); i++ {
		out = fmt.Sprintf("%s-%d", name, i)
	}
	return out
}

// note records a setting without an equivalent, as a comment on the
// service and in Result.Notes.
func (b *builder) note(s *service, msg string) {
	b.notes = append(b.notes, s.source+": "+msg)
	if s.node.HeadComment != "" {
		s.node.HeadComment += "\n"
	}
	s.node.HeadComment += "NOTE: " + msg
}

func (b *builder) hpa(h *autoscalingv2.HorizontalPodAutoscaler) {
	for _, o := range h.OwnerReferences {
		if o.Kind == "ScaledObject" {
			return // KEDA's own HPA; the ScaledObject is imported instead
		}
	}
	ref := h.Spec.ScaleTargetRef
	src := "HorizontalPodAutoscaler/" + h.Name
	if ref.Kind != "" && ref.Kind != "Deployment" && ref.Kind != "StatefulSet" {
		b.notes = append(b.notes, fmt.Sprintf("%s: scales a %s, which elmascale does not scale; skipped", src, ref.Kind))
		return
	}
	s := b.start(src, ref.Kind, ref.Name)
	if s == nil {
		return
	}
	minR := int32(1)
	if h.Spec.MinReplicas != nil {
		minR = *h.Spec.MinReplicas
	}
	put(s.node, "minReplicas", num(int64(minR)))
	put(s.node, "maxReplicas", num(int64(h.Spec.MaxReplicas)))
	if h.Spec.Behavior != nil {
		put(s.node, "behavior", b.behavior(s, h.Spec.Behavior))
	} else {
		put(s.node, "behavior", legacyBehavior())
	}
	for _, m := range h.Spec.Metrics {
		b.hpaMetric(s, m)
	}
	b.finish(s)
}

func (b *builder) hpaMetric(s *service, m autoscalingv2.MetricSpec) {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		r := m.Resource
		if r == nil {
			return
		}
		if r.Target.Type == autoscalingv2.UtilizationMetricType && r.Target.AverageUtilization != nil {
			b.utilization(s, string(r.Name), int64(*r.Target.AverageUtilization))
			return
		}
		b.note(s, fmt.Sprintf("resource metric %s with target %s has no equivalent (elmascale targets a utilization percent of requests)", r.Name, r.Target.Type))
	case autoscalingv2.ContainerResourceMetricSourceType:
		b.note(s, "container resource metrics have no equivalent (elmascale uses the whole pod's usage); add a utilization signal if the pod has one main container")
	case autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType, autoscalingv2.ExternalMetricSourceType:
		b.customMetric(s, m)
	default:
		b.note(s, fmt.Sprintf("metric type %s has no equivalent", m.Type))
	}
}

// customMetric carries a Pods, Object or External metric over. Those come
// from a custom or external metrics adapter, whose rules elmascale cannot
// read, so the metric definition it writes selects the series by the
// metric's name (what prometheus-adapter's default rules map it to) and
// carries a NOTE to check the query.
func (b *builder) customMetric(s *service, m autoscalingv2.MetricSpec) {
	name := metricName(m)
	var target autoscalingv2.MetricTarget
	switch {
	case m.Pods != nil:
		target = m.Pods.Target
	case m.Object != nil:
		target = m.Object.Target
	case m.External != nil:
		target = m.External.Target
	default:
		b.note(s, fmt.Sprintf("%s metric without its source; skipped", m.Type))
		return
	}
	quantity := func() (float64, bool) {
		q := target.AverageValue
		if target.Type == autoscalingv2.ValueMetricType {
			q = target.Value
		}
		if q == nil {
			return 0, false
		}
		f := q.AsApproximateFloat64()
		return f, f > 0
	}
	v, ok := quantity()
	if !ok {
		b.note(s, fmt.Sprintf("%s metric %s: target %s without a positive value; skipped", m.Type, name, target.Type))
		return
	}
	id := sanitize(fmt.Sprintf("%s-%s", s.name, name))
	sel := fmt.Sprintf(`%s{namespace=%q}`, sanitizeMetric(name), b.namespace)
	def, body := mapping(), mapping()
	prom := mapping()
	put(body, "metric", str(id))
	switch {
	case m.Type == autoscalingv2.PodsMetricSourceType:
		// One series per pod, matched with the workload's pods.
		put(prom, "query", str(fmt.Sprintf("sum by (pod) (%s)", sel)))
		put(prom, "keyLabel", str("pod"))
		put(body, "targetPerPod", float(v))
		b.signal(s, name, "pods", body)
	case target.Type == autoscalingv2.ValueMetricType:
		put(prom, "query", str(fmt.Sprintf(`label_replace(sum(%s), "service", %q, "", "")`, sel, s.name)))
		put(body, "target", float(v))
		b.signal(s, name, "object", body)
	default: // AverageValue of an Object or External metric: KEDA's and HPA's total over replicas
		put(prom, "query", str(fmt.Sprintf(`label_replace(sum(%s), "service", %q, "", "")`, sel, s.name)))
		put(body, "targetPerReplica", float(v))
		b.signal(s, name, "perReplica", body)
	}
	put(def, "prometheus", prom)
	def.HeadComment = fmt.Sprintf("from %s metric %s of %s: the query is guessed from the metric's name; check it against your metrics adapter's rules", m.Type, name, s.source)
	put(b.metrics, id, def)
	b.note(s, fmt.Sprintf("%s metric %s: check the query of metrics.%s (written from the metric's name)", m.Type, name, id))
}

// sanitizeMetric makes a custom metric name a valid PromQL metric name.
func sanitizeMetric(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// legacyBehavior is what an HPA without spec.behavior does: the
// controller's legacy path, not the autoscaling/v2 defaults.
func legacyBehavior() *yaml.Node {
	n := mapping()
	put(n, "legacy", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	n.Style = yaml.FlowStyle
	n.LineComment = "an HPA without behavior: scale-up at most max(2×current, 4) per sync, 5m downscale window"
	return n
}

func metricName(m autoscalingv2.MetricSpec) string {
	switch {
	case m.Pods != nil:
		return m.Pods.Metric.Name
	case m.Object != nil:
		return m.Object.Metric.Name
	case m.External != nil:
		return m.External.Metric.Name
	}
	return "?"
}

func (b *builder) utilization(s *service, resource string, percent int64) {
	if resource != "cpu" && resource != "memory" {
		b.note(s, "resource "+resource+" has no equivalent (cpu and memory only)")
		return
	}
	u := mapping()
	put(u, "resource", str(resource))
	put(u, "targetPercent", num(percent))
	u.Style = yaml.FlowStyle
	b.signal(s, resource, "utilization", u)
}

// signal appends a signal, naming it uniquely within the service.
func (b *builder) signal(s *service, name, kind string, body *yaml.Node) {
	used := map[string]bool{}
	for _, sg := range s.signals.Content {
		used[sg.Content[1].Value] = true
	}
	n := name
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	sg := mapping()
	put(sg, "name", str(n))
	put(sg, kind, body)
	s.signals.Content = append(s.signals.Content, sg)
}

func (b *builder) finish(s *service) {
	if len(s.signals.Content) == 0 {
		b.note(s, "no signal could be carried over: elmascale only keeps this service within its bounds until you add one")
		return
	}
	put(s.node, "signals", s.signals)
}

// behavior converts autoscaling/v2 behavior; the shapes match, each
// direction's tolerance included.
func (b *builder) behavior(_ *service, hb *autoscalingv2.HorizontalPodAutoscalerBehavior) *yaml.Node {
	n := mapping()
	var up, down *autoscalingv2.HPAScalingRules = hb.ScaleUp, hb.ScaleDown
	if up != nil {
		put(n, "scaleUp", rules(up))
	}
	if down != nil {
		put(n, "scaleDown", rules(down))
	}
	return n
}

func rules(r *autoscalingv2.HPAScalingRules) *yaml.Node {
	n := mapping()
	if r.Tolerance != nil {
		f, _ := strconv.ParseFloat(r.Tolerance.AsDec().String(), 64)
		put(n, "tolerance", float(f))
	}
	if r.StabilizationWindowSeconds != nil {
		put(n, "stabilizationWindow", str(seconds(*r.StabilizationWindowSeconds)))
	}
	if r.SelectPolicy != nil {
		put(n, "selectPolicy", str(string(*r.SelectPolicy)))
	}
	if len(r.Policies) > 0 {
		ps := &yaml.Node{Kind: yaml.SequenceNode}
		for _, p := range r.Policies {
			pn := mapping()
			put(pn, "type", str(string(p.Type)))
			put(pn, "value", num(int64(p.Value)))
			put(pn, "period", str(seconds(p.PeriodSeconds)))
			pn.Style = yaml.FlowStyle
			ps.Content = append(ps.Content, pn)
		}
		put(n, "policies", ps)
	}
	return n
}

func seconds(s int32) string { return (time.Duration(s) * time.Second).String() }

// scaledObject converts a KEDA ScaledObject.
func (b *builder) scaledObject(so unstructured.Unstructured) {
	src := "ScaledObject/" + so.GetName()
	spec, _, _ := unstructured.NestedMap(so.Object, "spec")
	kind, _, _ := unstructured.NestedString(spec, "scaleTargetRef", "kind")
	name, _, _ := unstructured.NestedString(spec, "scaleTargetRef", "name")
	if name == "" || (kind != "" && kind != "Deployment" && kind != "StatefulSet") {
		b.notes = append(b.notes, fmt.Sprintf("%s: target %s/%s is not a Deployment or StatefulSet; skipped", src, kind, name))
		return
	}
	s := b.start(src, kind, name)
	if s == nil {
		return
	}
	minR, maxR := int64(0), int64(100) // KEDA's defaults
	if v, ok := nestedInt(spec, "minReplicaCount"); ok {
		minR = v
	}
	if v, ok := nestedInt(spec, "maxReplicaCount"); ok {
		maxR = v
	}
	put(s.node, "minReplicas", num(minR))
	put(s.node, "maxReplicas", num(maxR))
	if minR == 0 {
		b.note(s, "minReplicaCount 0: KEDA scales to zero when idle and back up on activation; elmascale keeps bounds and may hold at 0 without an activation trigger")
	}
	if _, ok := nestedInt(spec, "cooldownPeriod"); ok {
		b.note(s, "cooldownPeriod only governs scaling to zero in KEDA; no equivalent")
	}
	if v, ok := nestedInt(spec, "pollingInterval"); ok {
		b.note(s, fmt.Sprintf("pollingInterval %ds: elmascale polls every config interval for all services", v))
	}
	if f, ok, _ := unstructured.NestedFieldNoCopy(spec, "fallback"); ok && f != nil {
		b.note(s, "fallback: elmascale has fallbackReplicas, which only ever raises replicas when every signal is missing; set it by hand if wanted")
	}
	if raw, ok, _ := unstructured.NestedMap(spec, "advanced", "horizontalPodAutoscalerConfig", "behavior"); ok {
		var hb autoscalingv2.HorizontalPodAutoscalerBehavior
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &hb); err != nil {
			b.note(s, "advanced.horizontalPodAutoscalerConfig.behavior could not be read: "+err.Error())
		} else {
			put(s.node, "behavior", b.behavior(s, &hb))
		}
	} else {
		// KEDA then creates its HPA without behavior: the legacy path.
		put(s.node, "behavior", legacyBehavior())
	}
	triggers, _, _ := unstructured.NestedSlice(spec, "triggers")
	for i, tr := range triggers {
		m, _ := tr.(map[string]any)
		b.trigger(s, i, m)
	}
	b.finish(s)
}

func nestedInt(m map[string]any, field string) (int64, bool) {
	switch v := m[field].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), true
	}
	return 0, false
}

func (b *builder) trigger(s *service, i int, t map[string]any) {
	typ, _ := t["type"].(string)
	metricType, _ := t["metricType"].(string)
	md := map[string]string{}
	if raw, ok := t["metadata"].(map[string]any); ok {
		for k, v := range raw {
			md[k] = fmt.Sprint(v)
		}
	}
	if _, ok := t["authenticationRef"]; ok {
		b.note(s, fmt.Sprintf("trigger %d (%s) authenticationRef: give elmascale's collector its own credentials", i, typ))
	}
	if v := md["activationThreshold"] + md["activationValue"]; v != "" {
		b.note(s, fmt.Sprintf("trigger %d (%s) activation threshold %s has no equivalent", i, typ, v))
	}
	switch typ {
	case "cpu", "memory":
		if metricType == "" {
			metricType = "Utilization"
		}
		v, err := strconv.ParseFloat(md["value"], 64)
		if metricType != "Utilization" || err != nil {
			b.note(s, fmt.Sprintf("trigger %d (%s) with metricType %s has no equivalent (utilization percent only)", i, typ, metricType))
			return
		}
		b.utilization(s, typ, int64(math.Round(v)))
	case "rabbitmq":
		b.rabbitmq(s, i, md)
	case "prometheus":
		b.prometheus(s, i, metricType, md)
	default:
		b.note(s, fmt.Sprintf("trigger %d of type %q has no equivalent; express it as a Prometheus metric and a signal", i, typ))
	}
}

// rabbitmq converts a RabbitMQ trigger. QueueLength (target messages per
// replica) becomes a queue signal on the same queue: with a drain time of
// one minute, full planned utilization and a throughput of value/60
// messages per second per replica, a backlog B asks for B/value replicas,
// as KEDA does, until elmascale measures the real throughput.
func (b *builder) rabbitmq(s *service, i int, md map[string]string) {
	queue := md["queueName"]
	if queue == "" {
		b.note(s, fmt.Sprintf("trigger %d (rabbitmq) names no queueName; skipped", i))
		return
	}
	mode := md["mode"]
	value := md["value"]
	if mode == "" && md["queueLength"] != "" {
		mode, value = "QueueLength", md["queueLength"] // the deprecated form
	}
	if mode == "" {
		mode = "QueueLength"
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil || v <= 0 {
		b.note(s, fmt.Sprintf("trigger %d (rabbitmq) value %q is not a positive number; skipped", i, value))
		return
	}
	vhost := md["vhostName"]
	if vhost == "" {
		vhost = "/"
	}
	switch mode {
	case "QueueLength":
		rq := mapping()
		put(rq, "vhost", str(vhost))
		qs := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{str(queue)}}
		put(rq, "queues", qs)
		q := mapping()
		put(q, "rabbitmq", rq)
		put(q, "drainTime", str("1m0s"))
		put(q, "targetUtilization", float(1))
		put(q, "throughputPerReplica", float(v/60))
		q.HeadComment = fmt.Sprintf("KEDA QueueLength %s per replica, as a drain target; lower targetUtilization to leave headroom", value)
		b.signal(s, "queue", "queue", q)
	case "MessageRate":
		metric := sanitize(s.name + "-" + queue + "-publish-rate")
		m := mapping()
		p := mapping()
		put(p, "query", str(fmt.Sprintf(`sum by (queue) (rate(rabbitmq_queue_messages_published_total{vhost=%q,queue=%q}[1m]))`, vhost, queue)))
		put(p, "keyLabel", str("queue"))
		put(m, "prometheus", p)
		m.HeadComment = "assumes RabbitMQ's Prometheus plugin with per-queue metrics"
		put(b.metrics, metric, m)
		r := mapping()
		put(r, "metric", str(metric))
		put(r, "key", str(queue))
		put(r, "targetPerReplica", float(v))
		b.signal(s, "publish-rate", "perReplica", r)
	default:
		b.note(s, fmt.Sprintf("trigger %d (rabbitmq) mode %q has no equivalent", i, mode))
	}
}

// prometheus converts a Prometheus trigger. KEDA's query returns one value;
// label_replace gives it the service label elmascale's metric definitions
// are keyed by.
func (b *builder) prometheus(s *service, i int, metricType string, md map[string]string) {
	q, th := strings.TrimSpace(md["query"]), md["threshold"]
	v, err := strconv.ParseFloat(th, 64)
	if q == "" || err != nil || v <= 0 {
		b.note(s, fmt.Sprintf("trigger %d (prometheus) needs a query and a positive threshold; skipped", i))
		return
	}
	if md["serverAddress"] != "" {
		b.note(s, fmt.Sprintf("trigger %d (prometheus) queried %s; elmascale queries the Prometheus given to `elmascale run`", i, md["serverAddress"]))
	}
	metric := sanitize(fmt.Sprintf("%s-trigger-%d", s.name, i))
	m := mapping()
	p := mapping()
	put(p, "query", str(fmt.Sprintf(`label_replace(%s, "service", %q, "", "")`, q, s.name)))
	put(m, "prometheus", p)
	put(b.metrics, metric, m)
	body := mapping()
	put(body, "metric", str(metric))
	switch metricType {
	case "", "AverageValue":
		put(body, "targetPerReplica", float(v))
		b.signal(s, "prometheus", "perReplica", body)
	case "Value":
		put(body, "target", float(v))
		b.signal(s, "prometheus", "object", body)
	default:
		b.note(s, fmt.Sprintf("trigger %d (prometheus) metricType %s has no equivalent", i, metricType))
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

func (b *builder) render(hpas, sos int) ([]byte, error) {
	root := mapping()
	root.HeadComment = fmt.Sprintf("Generated by `elmascale import --namespace %s` from %d HorizontalPodAutoscaler(s) and %d ScaledObject(s).\n"+
		"Review every NOTE below, then remove the HPAs/ScaledObjects: elmascale hands off any target they still scale.", b.namespace, hpas, sos)
	put(root, "apiVersion", str(config.APIVersion))
	put(root, "kind", str(config.Kind))
	put(root, "namespace", str(b.namespace))
	if len(b.metrics.Content) > 0 {
		put(root, "metrics", b.metrics)
	}
	svcs := mapping()
	sort.Slice(b.services, func(i, j int) bool { return b.services[i].name < b.services[j].name })
	for _, s := range b.services {
		k := str(s.name)
		k.HeadComment, s.node.HeadComment = s.node.HeadComment, ""
		svcs.Content = append(svcs.Content, k, s.node)
	}
	put(root, "services", svcs)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func put(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func num(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func float(f float64) *yaml.Node {
	v := strconv.FormatFloat(f, 'g', -1, 64)
	if f == math.Trunc(f) && !strings.ContainsAny(v, "e") {
		v += ".0" // written as a float, without an explicit tag
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: v}
}
