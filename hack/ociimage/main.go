// Command ociimage packs the static elmascale binary into an image tarball
// without a container engine, for nodes that pull from no registry
// (air-gapped MicroK8s and the like). The one file it writes is at once an
// OCI image layout and a `docker save` archive, so each of these loads it:
//
//	docker load -i elmascale.tar
//	ctr -n k8s.io images import elmascale.tar
//	microk8s ctr image import elmascale.tar
//
// Usage (make image does this):
//
//	go run ./hack/ociimage --binary bin/elmascale-static --version v1.2.3 --out bin/elmascale-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	var o options
	flag.StringVar(&o.Binary, "binary", "", "the static elmascale binary to pack (required)")
	flag.StringVar(&o.Version, "version", "dev", "image version: the tag and the org.opencontainers.image.version label")
	flag.StringVar(&o.Repository, "repository", "elmascale", "image repository the tag is given under")
	flag.StringVar(&o.Source, "source", "https://github.com/elmascale/elmascale", "org.opencontainers.image.source label")
	flag.StringVar(&o.Revision, "revision", "", "org.opencontainers.image.revision label (the commit)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's CPU architecture")
	flag.StringVar(&o.CABundle, "ca-bundle", defaultCABundle, "CA certificates to ship at /etc/ssl/certs/ca-certificates.crt (empty: none)")
	out := flag.String("out", "", "the tarball to write (required)")
	flag.Parse()
	if o.Binary == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "ociimage: --binary and --out are required")
		flag.Usage()
		os.Exit(2)
	}
	if _, err := os.Stat(o.CABundle); o.CABundle == defaultCABundle && err != nil {
		o.CABundle = "" // the build host has none; the image then has none
	}
	if err := writeFile(*out, o); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%s)\n", *out, o.ref())
}
