package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/doctor"
	"github.com/elmascale/elmascale/internal/version"
	"github.com/elmascale/elmascale/scaler"
)

// doctorTimeout bounds the whole check: informer sync, one collection and
// the access reviews.
const doctorTimeout = time.Minute

type doctorFlags struct {
	cfgPath, output, mode string
	policy                string
	leaseNamespace        string
	serviceAccount        string
	annotate              bool
	metricsAuth           bool
	live                  *liveFlags
}

func newDoctorCommand() *cobra.Command {
	f := &doctorFlags{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check on a live cluster that every signal resolves and every permission is granted; say how to fix what is not",
		Long: `Check what elmascale needs on a live cluster, once, and print one table:
  - each signal of each service: the query returns a series for that service, the
    RabbitMQ queue exists and has consumers, metrics.k8s.io measures its pods;
  - each permission elmascale's ServiceAccount needs (an access review per verb);
  - the targets it hands off (an HPA, a KEDA ScaledObject, the pause annotation), and
    single-instance services that run more than one pod now.
Each problem comes with its fix. The exit code is 1 when there is a problem.

The daemon runs the same checks when it starts and logs the table.`,
		Example: `  elmascale doctor --kubeconfig ~/.kube/config --prometheus http://localhost:9090 \
      --rabbitmq http://localhost:15672 --rabbitmq-user elmascale --rabbitmq-password-file pw
  kubectl -n elmascale exec deploy/elmascale -- /elmascale doctor --config /etc/elmascale/config.yaml -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("service-account") && inCluster(f.live.kubeconfig.String()) {
				f.serviceAccount = "self"
			}
			return runDoctor(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.cfgPath, "config", "", "configuration file (default: the embedded ELMA365 preset)")
	fs.StringVar(&f.policy, "policy", "", "check the config of this ScalingPolicy, NAMESPACE/NAME, as run --policy takes it, instead of --config; also checks the permissions on it")
	enumFlag(cmd, &f.output, "output", "o", "table", []string{"table", "json"}, "output format")
	enumFlag(cmd, &f.mode, "mode", "", string(scaler.ModeDryRun), []string{string(scaler.ModeApply), string(scaler.ModeDryRun)},
		"the mode to check permissions for: apply also needs to write the scale subresource")
	fs.StringVar(&f.leaseNamespace, "leader-elect-namespace", "elmascale", "namespace of the leader-election Lease (empty: no leader election)")
	fs.StringVar(&f.serviceAccount, "service-account", "elmascale/elmascale",
		"NAMESPACE/NAME of the ServiceAccount whose permissions are checked (SubjectAccessReview), or self for the caller's own (default self inside a pod)")
	fs.BoolVar(&f.annotate, "annotate-recommendations", false, "also check the permission --annotate-recommendations needs")
	fs.BoolVar(&f.metricsAuth, "metrics-auth", true, "also check the permissions --metrics-auth needs (on in the shipped install; --metrics-auth=false when it is off)")
	f.live = addLiveFlags(fs)
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

// inCluster is true when the cluster connection will be the pod's service
// account: no kubeconfig flag and no $KUBECONFIG.
func inCluster(kubeconfig string) bool {
	return kubeconfig == "" && os.Getenv("KUBECONFIG") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

func runDoctor(ctx context.Context, f *doctorFlags, stdout, stderr io.Writer) error {
	var policyNS, policyName string
	if f.policy != "" {
		if f.cfgPath != "" {
			return usageErrorf("--policy and --config both name the config; give one")
		}
		ns, name, ok := strings.Cut(f.policy, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return usageErrorf("--policy %q: want NAMESPACE/NAME", f.policy)
		}
		policyNS, policyName = ns, name
	}
	rc, err := restConfig(f.live.kubeconfig.String())
	if err != nil {
		return usageErrorf("%v", err)
	}
	rc.UserAgent = "elmascale/" + version.Version
	var cfg *config.Config
	if f.policy != "" {
		cfg, err = readPolicy(ctx, rc, policyNS, policyName)
	} else {
		cfg, err = loadConfig(f.cfgPath)
		if err != nil {
			err = fmt.Errorf("config %s: %w", displayName(f.cfgPath), err)
		}
	}
	if err != nil {
		return failed(err)
	}
	copts, err := f.live.options()
	if err != nil {
		return usageErrorf("%v", err)
	}
	col, err := collector.NewForConfig(rc, copts)
	if err != nil {
		return usageErrorf("%v", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return failed(err)
	}
	var access doctor.AccessReviewer = doctor.SelfAccess{Client: client}
	subject := ""
	if f.serviceAccount != "self" && f.serviceAccount != "" {
		ns, name, ok := strings.Cut(f.serviceAccount, "/")
		if !ok || ns == "" || name == "" {
			return usageErrorf("--service-account %q: want NAMESPACE/NAME or self", f.serviceAccount)
		}
		sa := doctor.ServiceAccountAccess{Client: client, Namespace: ns, Name: name}
		access, subject = sa, sa.Subject()
	}

	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	// The checks cover each pool's service the templates expand to now.
	if cfg, err = expandLive(ctx, "doctor", cfg, col, stderr); err != nil {
		return failed(err)
	}
	// Read only: a discarding recorder, so not even a hand-off Event is
	// written by the check.
	sc, err := scaler.NewForConfig(rc, scaler.Options{Client: client, Namespace: cfg.Namespace, Mode: scaler.ModeDryRun,
		Events: &record.FakeRecorder{}, Logger: zap.NewNop()})
	if err != nil {
		return failed(err)
	}
	defer sc.Close()
	if err := sc.Start(ctx); err != nil {
		return failed(fmt.Errorf("cannot read the workloads in %s: %w", cfg.Namespace, err))
	}
	rep := doctor.Run(ctx, cfg, doctor.Options{
		Collector: col, Targets: sc, Access: access,
		Sources: doctor.Sources{PrometheusURL: copts.PrometheusURL, RabbitMQURL: copts.RabbitMQURL, Kubernetes: true},
		Apply:   f.mode == string(scaler.ModeApply), LeaseNamespace: f.leaseNamespace,
		AnnotateRecommendations: f.annotate, MetricsAuth: f.metricsAuth, Subject: subject,
		PolicyNamespace: policyNS,
	}, time.Now())
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return failed(err)
		}
	} else if err := rep.WriteTable(stdout); err != nil {
		return failed(err)
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "doctor: %s\n", rep.Summary())
		return failedSilently()
	}
	return nil
}

// readPolicy reads a ScalingPolicy through the API server and compiles its
// spec as the daemon's --policy does; a spec the API server accepted but
// elmascale refuses is an error naming its fields under spec.
func readPolicy(ctx context.Context, rc *rest.Config, namespace, name string) (*config.Config, error) {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u, err := dyn.Resource(v1alpha1.GroupVersionResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("ScalingPolicy %s/%s: %w", namespace, name, err)
	}
	cfg, err := daemon.PolicyConfig(u)
	if err != nil {
		return nil, fmt.Errorf("ScalingPolicy %s/%s (generation %d): %w", namespace, name, u.GetGeneration(), err)
	}
	return cfg, nil
}
