package simulations

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elmascale/elmascale/config"
)

// Scenario is a loaded and validated scenario: the simulated cluster, its
// load, the SLOs it is scored on, and the elmascale configuration under test.
type Scenario struct {
	Name        string
	Description string
	// Start is the wall-clock time of virtual time zero (it only labels
	// timestamps; nothing reads the real clock).
	Start    time.Time
	Duration time.Duration
	// Warmup is the time at the start that is simulated but not scored:
	// every policy settles from the initial replicas to its steady state.
	Warmup time.Duration
	// Seed is the default seed of the scenario's runs.
	Seed uint64

	Services []ServiceModel
	Queues   []QueueModel
	Load     []LoadSource
	SLO      SLOs
	// Marks are moments worth measuring recovery from (a load step).
	Marks       []Mark
	Observation Observation
	// Bindings say how the simulated Prometheus answers each metric
	// definition a configuration names.
	Bindings map[string]MetricBinding

	// Elmascale is the compiled configuration under test and ElmascaleYAML
	// the text it was compiled from.
	Elmascale     *config.Config
	ElmascaleYAML []byte
	// Baselines tunes how the baseline configurations are generated.
	Baselines BaselineSettings
	// Nodes, when set, is the node pool pods are scheduled on; without it
	// capacity is unlimited and no pod is ever Pending for want of room.
	Nodes *NodePool
}

// ServiceModel is one simulated service (one Deployment).
type ServiceModel struct {
	Name string
	// Replicas at time zero, all ready.
	Replicas int32
	// SingleInstance services break when run as more than one pod (ELMA365's
	// scheduler, notifier, messengers): the simulated scaler refuses more.
	SingleInstance bool
	// Slots is how many requests one pod works on at once (its CPU or
	// thread capacity); further requests wait.
	Slots int32
	// ServiceTime is a request's own work, excluding the calls it makes.
	ServiceTime Dist
	// CPUPerRequest is the CPU time a request of mean service time burns;
	// a request burns in proportion to its drawn service time.
	CPUPerRequest time.Duration
	// CPURequestMilli is the pod's CPU request in millicores and IdleMilli
	// what an idle pod uses.
	CPURequestMilli int64
	IdleMilli       int64
	// Startup is the time from creating a pod to its readiness, drawn
	// uniformly within ±StartupJitter. Scheduling takes the first
	// SchedulingDelay of it (phase Pending).
	Startup         time.Duration
	StartupJitter   time.Duration
	SchedulingDelay time.Duration
	// Calls are synchronous calls made, in order, after the own work.
	Calls []Call
	// Publishes are messages sent to queues (asynchronously) per request.
	Publishes []Publish
	// Consumes lists queues whose messages this service's pods work on.
	Consumes []string

	// Concurrency says what a slot is: ConcurrencyAsync (the default) frees
	// it when the own work ends, so requests waiting on their calls hold
	// nothing; ConcurrencySync holds it until the last call has answered,
	// as a thread-per-request server or a connection pool does, so a slow
	// dependency exhausts the pool and requests queue upstream.
	Concurrency Concurrency
	// CPULimitMilli is the pod's CPU limit (0: none). Own work that would
	// burn CPU faster than the limit is stretched by the ratio, as the CFS
	// quota throttles it.
	CPULimitMilli int64
	// MemoryRequestBytes is the pod's memory request, for node fitting.
	MemoryRequestBytes int64
	// Phases slow the service down (or speed it up) from one time to
	// another: own work started within a phase takes Factor times as long.
	Phases []Phase
	// Store is the kind of data store (StorePostgreSQL, …) this model is,
	// or "" for a service. A data store is never scaled by anything: it
	// keeps its replicas, and the scores say when it saturates.
	Store string
}

// Concurrency is how a pod's slots are held; see ServiceModel.Concurrency.
type Concurrency string

// The concurrency models.
const (
	ConcurrencyAsync Concurrency = "async"
	ConcurrencySync  Concurrency = "sync"
)

// The data store kinds a scenario can name; they only label the store.
const (
	StorePostgreSQL = "postgresql"
	StoreMongoDB    = "mongodb"
	StoreRedis      = "redis"
	StoreMinIO      = "minio"
	StoreRabbitMQ   = "rabbitmq"
)

// Phase multiplies a service's own service time by Factor for work that
// starts in [From, To).
type Phase struct {
	From, To time.Duration
	Factor   float64
}

// NodePool is the nodes pods run on. Pods that fit on no node stay
// Pending; with MaxCount above Count a cluster autoscaler adds nodes,
// each ready AddDelay after pods first went Pending for want of one.
// Nodes are never removed.
type NodePool struct {
	Count, MaxCount int
	// CPUMilli and MemoryBytes are each node's allocatable resources.
	CPUMilli    int64
	MemoryBytes int64
	AddDelay    time.Duration
}

// Call is an edge of the call graph: Mean calls to Service per request
// (the integer part always, the fraction with that probability).
type Call struct {
	Service string
	Mean    float64
	// Timeout is how long the caller waits for one attempt (0: forever);
	// it then abandons the attempt (the callee still does the work, as a
	// server that does not see the client go away does) and makes up to
	// Retries further attempts, after which the call fails and the caller
	// goes on with a failed request.
	Timeout time.Duration
	Retries int32
}

// Publish is Mean messages to Queue per request.
type Publish struct {
	Queue string
	Mean  float64
}

// QueueModel is a RabbitMQ-like work queue (one per worker pool).
type QueueModel struct {
	Name string
	// ServiceTime and CPUPerMessage are a message's processing.
	ServiceTime   Dist
	CPUPerMessage time.Duration
	// Consumer is the service consuming it (filled in from Consumes).
	Consumer string
	// Calls and Publishes are what a message (a user script) does after
	// its own work, like a service's: synchronous calls one after another,
	// then messages to queues. A message is acknowledged when its last
	// call has answered; whether it holds its consumer's slot meanwhile is
	// the consumer's Concurrency.
	Calls     []Call
	Publishes []Publish
}

// LoadSource is one stream of external arrivals into a service or queue.
type LoadSource struct {
	// Exactly one of Service and Queue is set.
	Service string
	Queue   string
	Profile Profile
	Noise   Noise
	// Bursts are extra load drawn per seed on top of the profile.
	Bursts *Bursts
}

// SLOs are what a run is scored on. Every latency is a p95 over Window.
type SLOs struct {
	Window time.Duration
	// EndToEnd: p95 latency of requests entering the cluster at a service.
	EndToEnd []LatencySLO
	// Services: p95 latency of all requests a service serves.
	Services []LatencySLO
	// Queues: p95 time a message waits before a consumer takes it.
	Queues []LatencySLO
	// RecoveryHold is how long a run must stay within its SLOs after a mark
	// to count as recovered.
	RecoveryHold time.Duration
}

// LatencySLO is a p95 target for a service or queue.
type LatencySLO struct {
	Name string
	P95  time.Duration
}

// Mark is a named moment of the scenario, e.g. a load step.
type Mark struct {
	Name string
	At   time.Duration
	// Horizon bounds the time to recover measured from this mark.
	Horizon time.Duration
}

// Observation sets how stale and coarse the simulated metrics are.
type Observation struct {
	// ScrapeInterval of the simulated Prometheus.
	ScrapeInterval time.Duration
	// MetricsResolution of the simulated metrics-server (CPU samples).
	MetricsResolution time.Duration
	// QueueStatsInterval: how often the management API's queue stats refresh.
	QueueStatsInterval time.Duration
	// QueueRateWindow: publish and ack rates are averaged over this.
	QueueRateWindow time.Duration
	// LatencyBuckets are the upper bounds (seconds) of the services'
	// request duration histograms.
	LatencyBuckets []float64
}

// SeriesKind names a simulated metric a binding can expose.
type SeriesKind string

// The simulated series.
const (
	// SeriesLatencyQuantile is histogram_quantile(Quantile, rate(buckets[Window])) by service, seconds.
	SeriesLatencyQuantile SeriesKind = "latencyQuantile"
	// SeriesInFlight is the requests being served by a service (gauge).
	SeriesInFlight SeriesKind = "inFlight"
	// SeriesRequestRate is rate(requests_total[Window]) by service.
	SeriesRequestRate SeriesKind = "requestRate"
	// SeriesQueueMessages is a queue's ready plus unacknowledged messages, by queue.
	SeriesQueueMessages SeriesKind = "queueMessages"
	// SeriesQueueReady is a queue's ready messages, by queue.
	SeriesQueueReady SeriesKind = "queueReady"
	// SeriesQueueUnacked is a queue's messages delivered and not yet
	// acknowledged (in progress), by queue: the last sample, or with a
	// window the mean of the samples within it (avg_over_time).
	SeriesQueueUnacked SeriesKind = "queueUnacked"
	// SeriesQueuePublishRate and SeriesQueueAckRate are messages per second, by queue.
	SeriesQueuePublishRate SeriesKind = "queuePublishRate"
	SeriesQueueAckRate     SeriesKind = "queueAckRate"
	// SeriesEdgeRate is the requests per second the binding's From
	// service sends to the keyed service, over Window: Linkerd's
	// rate(request_total{direction="outbound", deployment=From}[Window])
	// by dst_deployment. Retried attempts count, as the proxy counts them.
	SeriesEdgeRate SeriesKind = "edgeRate"
	// SeriesFailureRate is the responses per second a service answered
	// as failed, over Window: Linkerd's inbound
	// response_total{classification="failure"}. A response fails when one
	// of its calls ran out of attempts, or when its caller abandoned it
	// (the caller's timeout resets the stream).
	SeriesFailureRate SeriesKind = "failureRate"
)

// MetricBinding says what a configuration's metric name means in the
// simulator.
type MetricBinding struct {
	Series   SeriesKind
	Quantile float64
	Window   time.Duration
	// From is the calling service of an edgeRate series.
	From string
}

// BaselineSettings are the knobs a user of each baseline would set.
type BaselineSettings struct {
	// HPACPUTargetPercent for the HPA-style and KEDA-style baselines (70).
	HPACPUTargetPercent int32
	// KEDAQueueLengthPerReplica is the ScaledObject's RabbitMQ QueueLength
	// value (20).
	KEDAQueueLengthPerReplica float64
	// KEDAPollingInterval (30s) is KEDA's pollingInterval: it governs only
	// activation from zero replicas, which the KEDA-style baseline leaves
	// out (see BuildPolicy); the HPA beneath polls every HPASyncPeriod.
	KEDAPollingInterval time.Duration
	// HPASyncPeriod (15s).
	HPASyncPeriod time.Duration
}

// DefaultLatencyBuckets are the request duration histogram bounds the
// simulated services expose, in seconds.
var DefaultLatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 5, 10, 30, 60}

// KEDAQueueMetric is the metric the KEDA-style baseline scales the queue
// consumers on: a queue's messages (ready plus unacknowledged), by queue.
const KEDAQueueMetric = "rabbitmq_queue_messages"

// defaultBindings answer the metric names the ELMA365 preset defines.
func defaultBindings() map[string]MetricBinding {
	return map[string]MetricBinding{
		"request_latency_p95": {Series: SeriesLatencyQuantile, Quantile: 0.95, Window: time.Minute},
		"requests_in_flight":  {Series: SeriesInFlight},
		// What KEDA's RabbitMQ scaler reads in QueueLength mode.
		KEDAQueueMetric: {Series: SeriesQueueMessages},
		// Requests per second by service over the last 30s.
		"request_rate": {Series: SeriesRequestRate, Window: 30 * time.Second},
		// The RabbitMQ Prometheus plugin's per-queue series.
		"rabbitmq_queue_messages_ready":   {Series: SeriesQueueReady},
		"rabbitmq_queue_messages_unacked": {Series: SeriesQueueUnacked},
		"rabbitmq_queue_unacked_avg":      {Series: SeriesQueueUnacked, Window: 30 * time.Second},
		"rabbitmq_queue_publish_rate":     {Series: SeriesQueuePublishRate, Window: 30 * time.Second},
		"rabbitmq_queue_ack_rate":         {Series: SeriesQueueAckRate, Window: 30 * time.Second},
		// Linkerd's proxy metrics by deployment: the inbound
		// response_latency_ms histogram's p95 (in seconds, as a query
		// dividing by 1000 gives it) and the inbound request_total's rate.
		// Outbound edges need their caller: bind series edgeRate with from.
		"linkerd_response_latency_p95": {Series: SeriesLatencyQuantile, Quantile: 0.95, Window: time.Minute},
		"linkerd_request_rate":         {Series: SeriesRequestRate, Window: time.Minute},
		"linkerd_failure_rate":         {Series: SeriesFailureRate, Window: time.Minute},
	}
}

// ---- file shapes ----

type scenarioFile struct {
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Start       string              `yaml:"start"`
	Duration    config.Duration     `yaml:"duration"`
	Warmup      config.Duration     `yaml:"warmup"`
	Seed        uint64              `yaml:"seed"`
	Cluster     clusterFile         `yaml:"cluster"`
	Load        []loadFile          `yaml:"load"`
	SLO         sloFile             `yaml:"slo"`
	Marks       []markFile          `yaml:"marks"`
	Observation observationFile     `yaml:"observation"`
	Bindings    map[string]bindFile `yaml:"metricBindings"`
	Baselines   baselinesFile       `yaml:"baselines"`
}

type clusterFile struct {
	Services map[string]serviceFile `yaml:"services"`
	Queues   map[string]queueFile   `yaml:"queues"`
	Stores   map[string]storeFile   `yaml:"stores"`
	// Pools are expanded into services and queues before decoding
	// (expandPools); the decoded value is unused.
	Pools []poolFile `yaml:"pools"`
	Nodes *nodesFile `yaml:"nodes"`
}

type serviceFile struct {
	Replicas        *int32          `yaml:"replicas"`
	SingleInstance  bool            `yaml:"singleInstance"`
	Slots           int32           `yaml:"slots"`
	ServiceTime     distFile        `yaml:"serviceTime"`
	CPUPerRequest   config.Duration `yaml:"cpuPerRequest"`
	CPURequest      Millicores      `yaml:"cpuRequest"`
	IdleCPU         Millicores      `yaml:"idleCPU"`
	Startup         config.Duration `yaml:"startup"`
	StartupJitter   config.Duration `yaml:"startupJitter"`
	SchedulingDelay config.Duration `yaml:"schedulingDelay"`
	Calls           []callFile      `yaml:"calls"`
	Publishes       []publishFile   `yaml:"publishes"`
	Consumes        []string        `yaml:"consumes"`
	Concurrency     string          `yaml:"concurrency"`
	CPULimit        Millicores      `yaml:"cpuLimit"`
	MemoryRequest   Bytes           `yaml:"memoryRequest"`
	Phases          []phaseFile     `yaml:"phases"`
	// store is set for the entries compileStores makes from cluster.stores.
	store string
}

type callFile struct {
	Service string          `yaml:"service"`
	Mean    float64         `yaml:"mean"`
	Timeout config.Duration `yaml:"timeout"`
	Retries int32           `yaml:"retries"`
}

type publishFile struct {
	Queue string  `yaml:"queue"`
	Mean  float64 `yaml:"mean"`
}

type queueFile struct {
	ServiceTime   distFile        `yaml:"serviceTime"`
	CPUPerMessage config.Duration `yaml:"cpuPerMessage"`
	Calls         []callFile      `yaml:"calls"`
	Publishes     []publishFile   `yaml:"publishes"`
}

type distFile struct {
	Kind string          `yaml:"dist"`
	Mean config.Duration `yaml:"mean"`
	CV   *float64        `yaml:"cv"`
}

type loadFile struct {
	Service  string          `yaml:"service"`
	Queue    string          `yaml:"queue"`
	Scale    *float64        `yaml:"scale"`
	Points   []pointFile     `yaml:"points"`
	Repeat   config.Duration `yaml:"repeat"`
	Sine     *sineFile       `yaml:"sine"`
	CSV      string          `yaml:"csv"`
	Noise    *noiseFile      `yaml:"noise"`
	Constant *float64        `yaml:"constant"`
	Bursts   *burstsFile     `yaml:"bursts"`
}

type pointFile struct {
	At  config.Duration `yaml:"at"`
	RPS float64         `yaml:"rps"`
}

type sineFile struct {
	Mean      float64         `yaml:"mean"`
	Amplitude float64         `yaml:"amplitude"`
	Period    config.Duration `yaml:"period"`
	Phase     config.Duration `yaml:"phase"`
}

type noiseFile struct {
	CV          float64         `yaml:"cv"`
	Period      config.Duration `yaml:"period"`
	Group       string          `yaml:"group"`
	Correlation float64         `yaml:"correlation"`
}

type sloFile struct {
	Window       config.Duration            `yaml:"window"`
	EndToEnd     map[string]config.Duration `yaml:"endToEnd"`
	Services     map[string]config.Duration `yaml:"services"`
	Queues       map[string]config.Duration `yaml:"queues"`
	RecoveryHold config.Duration            `yaml:"recoveryHold"`
}

type markFile struct {
	Name    string          `yaml:"name"`
	At      config.Duration `yaml:"at"`
	Horizon config.Duration `yaml:"horizon"`
}

type observationFile struct {
	ScrapeInterval     config.Duration `yaml:"scrapeInterval"`
	MetricsResolution  config.Duration `yaml:"metricsResolution"`
	QueueStatsInterval config.Duration `yaml:"queueStatsInterval"`
	QueueRateWindow    config.Duration `yaml:"queueRateWindow"`
	LatencyBuckets     []float64       `yaml:"latencyBuckets"`
}

type bindFile struct {
	Series   string          `yaml:"series"`
	Quantile float64         `yaml:"quantile"`
	Window   config.Duration `yaml:"window"`
	From     string          `yaml:"from"`
}

type baselinesFile struct {
	HPACPUTargetPercent       int32           `yaml:"hpaCPUTargetPercent"`
	KEDAQueueLengthPerReplica float64         `yaml:"kedaQueueLengthPerReplica"`
	KEDAPollingInterval       config.Duration `yaml:"kedaPollingInterval"`
	HPASyncPeriod             config.Duration `yaml:"hpaSyncPeriod"`
}

// Millicores is a CPU quantity written as Kubernetes does: "500m" or "2".
type Millicores int64

// UnmarshalYAML parses "250m", "1.5" or 2.
func (m *Millicores) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := 1000.0
	if strings.HasSuffix(s, "m") {
		s, mult = strings.TrimSuffix(s, "m"), 1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: CPU quantity %q must look like 500m or 2", n.Line, n.Value)
	}
	*m = Millicores(v * mult)
	return nil
}

// ---- loading ----

// LoadScenario reads a scenario file. A file may take its cluster from
// another file (cluster.base, relative to the scenario) and its elmascale
// configuration from the embedded preset or a file, then overlay files,
// then inline overrides, each merged key by key (a null value deletes a
// key; lists are replaced whole).
func LoadScenario(file string) (*Scenario, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(abs)
	return LoadScenarioFS(os.DirFS(dir), name)
}

// LoadScenarioFS reads a scenario from a file system, such as the shipped
// scenarios in Scenarios; relative references resolve within fsys.
func LoadScenarioFS(fsys fs.FS, file string) (*Scenario, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	sc, err := ParseScenario(data, fsys, path.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(path.Base(file), path.Ext(file))
	}
	return sc, nil
}

// ParseScenario parses a scenario; the relative paths in it name files of
// fsys relative to dir.
func ParseScenario(data []byte, fsys fs.FS, dir string) (*Scenario, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("scenario is not valid YAML: %w", err)
	}
	if raw == nil {
		return nil, errors.New("scenario is empty")
	}
	// Cluster: base file plus overrides.
	if c, ok := raw["cluster"].(map[string]any); ok {
		if base, ok := c["base"].(string); ok {
			b, err := fs.ReadFile(fsys, path.Join(dir, base))
			if err != nil {
				return nil, fmt.Errorf("cluster.base: %w", err)
			}
			var bm map[string]any
			if err := yaml.Unmarshal(b, &bm); err != nil {
				return nil, fmt.Errorf("cluster.base %s: %w", base, err)
			}
			delete(c, "base")
			raw["cluster"] = mergeYAML(bm, c)
		}
	}
	cluster, _ := raw["cluster"].(map[string]any)
	// Elmascale config: preset or file plus overrides.
	var cfgYAML []byte
	if e, ok := raw["elmascale"].(map[string]any); ok {
		var base map[string]any
		switch {
		case e["preset"] != nil:
			if e["preset"] != config.PlatformELMA365 {
				return nil, fmt.Errorf("elmascale.preset: only %q is known", config.PlatformELMA365)
			}
			if err := yaml.Unmarshal(config.ELMA365PresetYAML(), &base); err != nil {
				return nil, err
			}
		case e["file"] != nil:
			name, _ := e["file"].(string)
			b, err := fs.ReadFile(fsys, path.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("elmascale.file: %w", err)
			}
			if err := yaml.Unmarshal(b, &base); err != nil {
				return nil, fmt.Errorf("elmascale.file: %w", err)
			}
		default:
			base = map[string]any{}
		}
		for k := range e {
			if k != "preset" && k != "file" && k != "overlays" && k != "overrides" {
				return nil, fmt.Errorf("elmascale.%s: unknown field (want preset, file, overlays, overrides)", k)
			}
		}
		if list, ok := e["overlays"].([]any); ok {
			for _, item := range list {
				name, _ := item.(string)
				b, err := fs.ReadFile(fsys, path.Join(dir, name))
				if err != nil {
					return nil, fmt.Errorf("elmascale.overlays: %w", err)
				}
				var o map[string]any
				if err := yaml.Unmarshal(b, &o); err != nil {
					return nil, fmt.Errorf("elmascale.overlays %s: %w", name, err)
				}
				base = mergeYAML(base, o)
			}
		}
		if o, ok := e["overrides"].(map[string]any); ok {
			base = mergeYAML(base, o)
		}
		if cluster != nil {
			cfgServices, _ := base["services"].(map[string]any)
			if cfgServices == nil {
				cfgServices = map[string]any{}
				base["services"] = cfgServices
			}
			if err := expandPools(cluster, cfgServices); err != nil {
				return nil, err
			}
		}
		var err error
		if cfgYAML, err = yaml.Marshal(base); err != nil {
			return nil, err
		}
		delete(raw, "elmascale")
	} else {
		return nil, errors.New("elmascale: must give the configuration under test (preset, file, overrides)")
	}
	merged, err := yaml.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var f scenarioFile
	dec := yaml.NewDecoder(bytes.NewReader(merged))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	cfg, err := config.Parse(cfgYAML)
	if err != nil {
		return nil, fmt.Errorf("elmascale config:\n%w", err)
	}
	sc, err := compileScenario(&f, fsys, dir)
	if err != nil {
		return nil, err
	}
	sc.Elmascale, sc.ElmascaleYAML = cfg, cfgYAML
	return sc, nil
}

// mergeYAML overlays o on base, recursively for mappings.
func mergeYAML(base, o map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(o))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range o {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeYAML(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// scenarioCompiler carries what the steps of compileScenario share: the
// file, the scenario being built, the problems found and the name indexes.
type scenarioCompiler struct {
	f        *scenarioFile
	fsys     fs.FS
	dir      string
	sc       *Scenario
	errs     problems
	services map[string]bool   // service names
	queues   map[string]bool   // queue names
	consumer map[string]string // queue -> the service consuming it
}

func compileScenario(f *scenarioFile, fsys fs.FS, dir string) (*Scenario, error) {
	c := &scenarioCompiler{f: f, fsys: fsys, dir: dir, sc: &Scenario{},
		services: map[string]bool{}, queues: map[string]bool{}, consumer: map[string]string{}}
	c.compileHeader()
	c.compileStores()
	c.compileServices()
	c.compileQueues()
	c.compileNodes()
	c.compileLoad()
	c.compileSLO()
	c.compileObservation()
	c.compileBindings()
	c.compileBaselines()
	if len(c.errs) > 0 {
		return nil, errors.New(strings.Join(c.errs, "\n"))
	}
	return c.sc, nil
}

// compileHeader compiles the name, the time span and the seed.
func (c *scenarioCompiler) compileHeader() {
	f := c.f
	sc := c.sc
	*sc = Scenario{Name: f.Name, Description: f.Description, Duration: f.Duration.D(), Warmup: f.Warmup.D(), Seed: f.Seed}
	if sc.Seed == 0 {
		sc.Seed = 1
	}
	sc.Start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	if f.Start != "" {
		t, err := time.Parse(time.RFC3339, f.Start)
		if err != nil {
			c.errs.add("start: %v", err)
		}
		sc.Start = t
	}
	if sc.Duration < time.Minute || sc.Duration > 7*24*time.Hour {
		c.errs.add("duration: must be in [1m, 168h]")
	}
	if sc.Duration%time.Second != 0 {
		c.errs.add("duration: must be whole seconds")
	}
	if sc.Warmup < 0 || sc.Warmup >= sc.Duration || sc.Warmup%time.Second != 0 {
		c.errs.add("warmup: must be whole seconds, shorter than the duration")
	}
}

// compileServices compiles the service models, in name order so that runs never depend on map order.
func (c *scenarioCompiler) compileServices() {
	f := c.f
	sc := c.sc
	// Services, in name order so that runs never depend on map order.
	for _, name := range slices.Sorted(maps.Keys(f.Cluster.Services)) {
		c.services[name] = true
	}
	if len(c.services) == 0 {
		c.errs.add("cluster.services: must list at least one service")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Cluster.Queues)) {
		c.queues[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(f.Cluster.Services)) {
		s := f.Cluster.Services[name]
		p := "cluster.services." + name
		m := ServiceModel{
			Name: name, SingleInstance: s.SingleInstance, Slots: s.Slots,
			CPUPerRequest: s.CPUPerRequest.D(), CPURequestMilli: int64(s.CPURequest), IdleMilli: int64(s.IdleCPU),
			Startup: s.Startup.D(), StartupJitter: s.StartupJitter.D(), SchedulingDelay: s.SchedulingDelay.D(),
		}
		m.Replicas = 2
		if s.SingleInstance {
			m.Replicas = 1
		}
		if s.Replicas != nil {
			m.Replicas = *s.Replicas
		}
		if m.Replicas < 1 || (s.SingleInstance && m.Replicas != 1) {
			c.errs.add("%s.replicas: must be >= 1 (exactly 1 for a single-instance service)", p)
		}
		if m.Slots < 1 {
			c.errs.add("%s.slots: must be >= 1", p)
		}
		var err error
		if m.ServiceTime, err = compileDist(s.ServiceTime); err != nil {
			c.errs.add("%s.serviceTime: %v", p, err)
		}
		if m.CPURequestMilli <= 0 {
			c.errs.add("%s.cpuRequest: must be > 0", p)
		}
		if m.CPUPerRequest < 0 {
			c.errs.add("%s.cpuPerRequest: must be >= 0", p)
		}
		if m.Startup <= 0 {
			m.Startup = 30 * time.Second
		}
		if m.SchedulingDelay <= 0 {
			m.SchedulingDelay = 2 * time.Second
		}
		if m.StartupJitter < 0 || m.Startup-m.StartupJitter < m.SchedulingDelay {
			c.errs.add("%s: startup - startupJitter must be at least schedulingDelay", p)
		}
		m.Calls = c.compileCalls(p, s.Calls)
		m.Publishes = c.compilePublishes(p, s.Publishes)
		c.compileServiceMechanics(p, &s, &m)
		for _, q := range s.Consumes {
			if !c.queues[q] {
				c.errs.add("%s.consumes: unknown queue %q", p, q)
			} else if other, ok := c.consumer[q]; ok {
				c.errs.add("%s.consumes: queue %q is already consumed by %s", p, q, other)
			}
			c.consumer[q] = name
		}
		m.Consumes = append([]string(nil), s.Consumes...)
		sc.Services = append(sc.Services, m)
	}
	if cyc := callCycle(sc.Services); cyc != "" {
		c.errs.add("cluster.services: call cycle %s", cyc)
	}
}

// compileQueues compiles the queue models; each needs its one consumer.
func (c *scenarioCompiler) compileQueues() {
	f := c.f
	sc := c.sc
	for _, name := range slices.Sorted(maps.Keys(f.Cluster.Queues)) {
		q := f.Cluster.Queues[name]
		m := QueueModel{Name: name, CPUPerMessage: q.CPUPerMessage.D(), Consumer: c.consumer[name]}
		var err error
		if m.ServiceTime, err = compileDist(q.ServiceTime); err != nil {
			c.errs.add("cluster.queues.%s.serviceTime: %v", name, err)
		}
		if m.Consumer == "" {
			c.errs.add("cluster.queues.%s: no service consumes it", name)
		}
		m.Calls = c.compileCalls("cluster.queues."+name, q.Calls)
		m.Publishes = c.compilePublishes("cluster.queues."+name, q.Publishes)
		sc.Queues = append(sc.Queues, m)
	}
}

// compileLoad compiles the load sources.
func (c *scenarioCompiler) compileLoad() {
	f := c.f
	sc := c.sc
	// Load.
	if len(f.Load) == 0 {
		c.errs.add("load: must have at least one source")
	}
	for i, l := range f.Load {
		p := fmt.Sprintf("load[%d]", i)
		src := LoadSource{Service: l.Service, Queue: l.Queue}
		switch {
		case (l.Service == "") == (l.Queue == ""):
			c.errs.add("%s: set exactly one of service and queue", p)
		case l.Service != "" && !c.services[l.Service]:
			c.errs.add("%s.service: unknown service %q", p, l.Service)
		case l.Queue != "" && !c.queues[l.Queue]:
			c.errs.add("%s.queue: unknown queue %q", p, l.Queue)
		}
		prof, err := compileProfile(l, c.fsys, c.dir)
		if err != nil {
			c.errs.add("%s: %v", p, err)
		}
		src.Profile = prof
		if l.Noise != nil {
			src.Noise = Noise{CV: l.Noise.CV, Period: l.Noise.Period.D(), Group: l.Noise.Group, Correlation: l.Noise.Correlation}
			if src.Noise.Period <= 0 {
				src.Noise.Period = time.Minute
			}
			if src.Noise.CV < 0 || src.Noise.CV > 2 {
				c.errs.add("%s.noise.cv: must be in [0, 2]", p)
			}
			if src.Noise.Correlation < 0 || src.Noise.Correlation > 1 || (src.Noise.Correlation > 0 && src.Noise.Group == "") {
				c.errs.add("%s.noise.correlation: must be in [0, 1], with a group naming the sources it is shared with", p)
			}
		}
		if l.Bursts != nil {
			src.Bursts = c.compileBursts(p+".bursts", l.Bursts)
		}
		sc.Load = append(sc.Load, src)
	}
}

// compileSLO compiles the SLOs and the marks.
func (c *scenarioCompiler) compileSLO() {
	f := c.f
	sc := c.sc
	// SLOs.
	sc.SLO.Window = f.SLO.Window.D()
	if sc.SLO.Window == 0 {
		sc.SLO.Window = 10 * time.Second
	}
	if sc.SLO.Window < time.Second || sc.SLO.Window%time.Second != 0 {
		c.errs.add("slo.window: must be whole seconds >= 1s")
	}
	sc.SLO.RecoveryHold = f.SLO.RecoveryHold.D()
	if sc.SLO.RecoveryHold == 0 {
		sc.SLO.RecoveryHold = 2 * time.Minute
	}
	for _, name := range slices.Sorted(maps.Keys(f.SLO.EndToEnd)) {
		if !c.services[name] {
			c.errs.add("slo.endToEnd.%s: unknown service", name)
		}
		sc.SLO.EndToEnd = append(sc.SLO.EndToEnd, LatencySLO{Name: name, P95: f.SLO.EndToEnd[name].D()})
	}
	for _, name := range slices.Sorted(maps.Keys(f.SLO.Services)) {
		if !c.services[name] {
			c.errs.add("slo.services.%s: unknown service", name)
		}
		sc.SLO.Services = append(sc.SLO.Services, LatencySLO{Name: name, P95: f.SLO.Services[name].D()})
	}
	for _, name := range slices.Sorted(maps.Keys(f.SLO.Queues)) {
		if !c.queues[name] {
			c.errs.add("slo.queues.%s: unknown queue", name)
		}
		sc.SLO.Queues = append(sc.SLO.Queues, LatencySLO{Name: name, P95: f.SLO.Queues[name].D()})
	}
	for _, l := range [][]LatencySLO{sc.SLO.EndToEnd, sc.SLO.Services, sc.SLO.Queues} {
		for _, s := range l {
			if s.P95 <= 0 {
				c.errs.add("slo: %s must be > 0", s.Name)
			}
		}
	}
	for i, m := range f.Marks {
		mk := Mark{Name: m.Name, At: m.At.D(), Horizon: m.Horizon.D()}
		if mk.Horizon == 0 {
			mk.Horizon = 30 * time.Minute
		}
		if mk.At < 0 || mk.At >= sc.Duration {
			c.errs.add("marks[%d].at: must be within the duration", i)
		}
		sc.Marks = append(sc.Marks, mk)
	}
}

// compileObservation compiles how the simulated cluster is observed.
func (c *scenarioCompiler) compileObservation() {
	f := c.f
	sc := c.sc
	// Observation.
	o := f.Observation
	sc.Observation = Observation{
		ScrapeInterval: orDefault(o.ScrapeInterval.D(), 15*time.Second), MetricsResolution: orDefault(o.MetricsResolution.D(), 15*time.Second),
		QueueStatsInterval: orDefault(o.QueueStatsInterval.D(), 5*time.Second), QueueRateWindow: orDefault(o.QueueRateWindow.D(), 30*time.Second),
		LatencyBuckets: o.LatencyBuckets,
	}
	if len(sc.Observation.LatencyBuckets) == 0 {
		sc.Observation.LatencyBuckets = append([]float64(nil), DefaultLatencyBuckets...)
	}
	if !sort.Float64sAreSorted(sc.Observation.LatencyBuckets) || sc.Observation.LatencyBuckets[0] <= 0 {
		c.errs.add("observation.latencyBuckets: must be positive and ascending")
	}
	for _, d := range []time.Duration{sc.Observation.ScrapeInterval, sc.Observation.MetricsResolution, sc.Observation.QueueStatsInterval, sc.Observation.QueueRateWindow} {
		if d < time.Second || d%time.Second != 0 {
			c.errs.add("observation: intervals must be whole seconds >= 1s")
			break
		}
	}
}

// compileBindings compiles the metric bindings over the defaults.
func (c *scenarioCompiler) compileBindings() {
	f := c.f
	sc := c.sc
	sc.Bindings = defaultBindings()
	for name, b := range f.Bindings {
		mb := MetricBinding{Series: SeriesKind(b.Series), Quantile: b.Quantile, Window: b.Window.D(), From: b.From}
		if mb.From != "" && mb.Series != SeriesEdgeRate {
			c.errs.add("metricBindings.%s.from: only an %s series has a caller", name, SeriesEdgeRate)
		}
		switch mb.Series {
		case SeriesEdgeRate:
			if !c.services[mb.From] {
				c.errs.add("metricBindings.%s.from: must name the calling service (have %q)", name, mb.From)
			}
			mb.Window = orDefault(mb.Window, time.Minute)
		case SeriesLatencyQuantile:
			if mb.Quantile <= 0 || mb.Quantile >= 1 {
				c.errs.add("metricBindings.%s.quantile: must be in (0, 1)", name)
			}
			mb.Window = orDefault(mb.Window, time.Minute)
		case SeriesRequestRate, SeriesFailureRate, SeriesQueuePublishRate, SeriesQueueAckRate:
			mb.Window = orDefault(mb.Window, time.Minute)
		case SeriesInFlight, SeriesQueueMessages, SeriesQueueReady, SeriesQueueUnacked:
			// A window is an average over it (an unacked count only).
			if mb.Window != 0 && mb.Series != SeriesQueueUnacked {
				c.errs.add("metricBindings.%s.window: a %s series has no window", name, mb.Series)
			}
		default:
			c.errs.add("metricBindings.%s.series: unknown series %q", name, b.Series)
		}
		sc.Bindings[name] = mb
	}
}

// compileBaselines compiles the baselines' settings over their defaults.
func (c *scenarioCompiler) compileBaselines() {
	f := c.f
	sc := c.sc
	sc.Baselines = BaselineSettings{
		HPACPUTargetPercent: 70, KEDAQueueLengthPerReplica: 20,
		KEDAPollingInterval: 30 * time.Second, HPASyncPeriod: 15 * time.Second,
	}
	if f.Baselines.HPACPUTargetPercent != 0 {
		sc.Baselines.HPACPUTargetPercent = f.Baselines.HPACPUTargetPercent
	}
	if f.Baselines.KEDAQueueLengthPerReplica != 0 {
		sc.Baselines.KEDAQueueLengthPerReplica = f.Baselines.KEDAQueueLengthPerReplica
	}
	if f.Baselines.KEDAPollingInterval != 0 {
		sc.Baselines.KEDAPollingInterval = f.Baselines.KEDAPollingInterval.D()
	}
	if f.Baselines.HPASyncPeriod != 0 {
		sc.Baselines.HPASyncPeriod = f.Baselines.HPASyncPeriod.D()
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// callCycle returns a cycle of the call graph as text, or "".
func callCycle(svcs []ServiceModel) string {
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.Name
	}
	cycle := config.FindCycle(names, func(i int) []string {
		callees := make([]string, len(svcs[i].Calls))
		for k, c := range svcs[i].Calls {
			callees[k] = c.Service
		}
		return callees
	})
	return strings.Join(cycle, " → ")
}

// ServiceIndex returns the index of a service in Services, or -1.
func (sc *Scenario) ServiceIndex(name string) int {
	for i := range sc.Services {
		if sc.Services[i].Name == name {
			return i
		}
	}
	return -1
}

// QueueIndex returns the index of a queue in Queues, or -1.
func (sc *Scenario) QueueIndex(name string) int {
	for i := range sc.Queues {
		if sc.Queues[i].Name == name {
			return i
		}
	}
	return -1
}
