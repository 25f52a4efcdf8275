package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/importer"
)

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("namespace", "", "namespace whose HPAs and KEDA ScaledObjects to import (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster service account)")
	out := fs.String("o", "", "write the config to this file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *ns == "" {
		fmt.Fprintln(stderr, "import: --namespace is required")
		return 2
	}
	rc, err := restConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return 1
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return 1
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return 1
	}
	res, err := importer.Import(ctx, importer.Options{Client: client, Dynamic: dyn, Namespace: *ns})
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return 1
	}
	if *out == "" {
		_, err = stdout.Write(res.YAML)
	} else {
		err = os.WriteFile(*out, res.YAML, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "import: %d service(s) from %d HPA(s) and %d ScaledObject(s); %d setting(s) without an equivalent are marked NOTE\n",
		len(res.Config.Services), res.HPAs, res.ScaledObjects, len(res.Notes))
	return 0
}
