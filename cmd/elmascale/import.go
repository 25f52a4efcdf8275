package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/importer"
)

func newImportCommand() *cobra.Command {
	var ns, kubeconfig, out, policy string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Write an elmascale config equivalent to a namespace's HPAs and KEDA ScaledObjects",
		Long: `Read the HorizontalPodAutoscalers and KEDA ScaledObjects of a namespace and write an
elmascale config with the same targets, bounds, signals and behavior. Settings without an
equivalent are kept as NOTE comments. With --scaling-policy the config is written as a
ScalingPolicy resource of that name in the namespace, ready for kubectl apply.`,
		Example: `  elmascale import --namespace elma365 -o elmascale.yaml
  elmascale import --namespace elma365 --scaling-policy elma365 | kubectl apply -f -`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runImport(cmd.Context(), importer.Options{Namespace: ns, PolicyName: policy}, kubeconfig, out, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ns, "namespace", "", "namespace whose HPAs and KEDA ScaledObjects to import (required)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster service account)")
	fs.StringVarP(&out, "output", "o", "", "write the config to this file (default: standard output)")
	fs.StringVar(&policy, "scaling-policy", "", "write a ScalingPolicy of this name in --namespace (for kubectl apply) instead of a config file")
	_ = cmd.MarkFlagFilename("kubeconfig")
	_ = cmd.MarkFlagFilename("output", "yaml", "yml")
	return cmd
}

func runImport(ctx context.Context, opts importer.Options, kubeconfig, out string, stdout, stderr io.Writer) error {
	if opts.Namespace == "" {
		return usageErrorf("--namespace is required")
	}
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return failed(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return failed(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return failed(err)
	}
	opts.Client, opts.Dynamic = client, dyn
	res, err := importer.Import(ctx, opts)
	if err != nil {
		return failed(err)
	}
	if out == "" {
		_, err = stdout.Write(res.YAML)
	} else {
		err = os.WriteFile(out, res.YAML, 0o644)
	}
	if err != nil {
		return failed(err)
	}
	fmt.Fprintf(stderr, "import: %d service(s) from %d HPA(s) and %d ScaledObject(s); %d setting(s) without an equivalent are marked NOTE\n",
		len(res.Config.Services), res.HPAs, res.ScaledObjects, len(res.Notes))
	return nil
}
