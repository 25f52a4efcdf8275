package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	defaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
	// nonroot is distroless's unprivileged user, the one the manifests'
	// securityContext names.
	nonroot = 65532
)

// epoch stamps every file and the config, so the same binary always gives
// the same image digest.
var epoch = time.Unix(0, 0).UTC()

type options struct {
	Binary, Version, Repository, Source, Revision, Arch, CABundle string
}

// ref is the name the image is loaded under; Kubernetes normalises an
// `image: elmascale:v1` to the same docker.io/library name.
func (o options) ref() string { return o.Repository + ":" + o.Version }

func (o options) fullRef() string {
	if filepath.Base(o.Repository) == o.Repository {
		return "docker.io/library/" + o.ref()
	}
	return o.ref()
}

// build assembles the image: one uncompressed layer with the binary, a
// passwd/group naming the nonroot user and optionally CA certificates; no
// shell and no package manager.
func build(o options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	if len(bin) < 4 || !bytes.Equal(bin[:4], []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF binary", o.Binary)
	}
	var ca []byte
	if o.CABundle != "" {
		if ca, err = os.ReadFile(o.CABundle); err != nil {
			return nil, err
		}
	}
	layerTar, err := rootfs(bin, ca)
	if err != nil {
		return nil, err
	}
	layer := static.NewLayer(layerTar, types.OCIUncompressedLayer)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCIUncompressedLayer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/ociimage: /elmascale"}}); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", o.Arch, v1.Time{Time: epoch}
	labels := map[string]string{
		"org.opencontainers.image.title":       "elmascale",
		"org.opencontainers.image.description": "Load-driven autoscaler for ELMA365 and Kubernetes microservice platforms",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: []string{"/elmascale"},
		Cmd:        []string{"run"},
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=" + defaultCABundle},
		Labels:     labels,
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar: directories first, then files, all owned by
// root and stamped with epoch.
func rootfs(bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)
	steps := []error{dir("etc/"), file("etc/passwd", 0o644, []byte(passwd)), file("etc/group", 0o644, []byte(group))}
	if ca != nil {
		steps = append(steps, dir("etc/ssl/"), dir("etc/ssl/certs/"), file("etc/ssl/certs/ca-certificates.crt", 0o644, ca))
	}
	steps = append(steps, file("elmascale", 0o755, bin), tw.Close())
	if err := errors.Join(steps...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFile builds the image and writes it to path as one tar holding both
// an OCI image layout (oci-layout, index.json, blobs/) and the manifest.json
// of a `docker save` archive over the same blobs.
func writeFile(path string, o options) error {
	img, err := build(o)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f, img, o); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func write(w io.Writer, img v1.Image, o options) error {
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIImageIndex,
		"manifests": []map[string]any{{
			"mediaType": types.OCIManifestSchema1,
			"digest":    digest.String(),
			"size":      len(manifest),
			"platform":  map[string]string{"os": "linux", "architecture": o.Arch},
			"annotations": map[string]string{
				// containerd names the imported image after this one.
				"io.containerd.image.name":          o.fullRef(),
				"org.opencontainers.image.ref.name": o.Version,
			},
		}},
	})
	if err != nil {
		return err
	}
	docker := []map[string]any{{"Config": blob(cfgName), "RepoTags": []string{o.ref()}, "Layers": []string{}}}
	steps := []error{
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755, ModTime: epoch}),
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "blobs/sha256/", Mode: 0o755, ModTime: epoch}),
		add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		add(blob(cfgName), cfg),
		add(blob(digest), manifest),
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		steps = append(steps, add(blob(d), data))
		docker[0]["Layers"] = append(docker[0]["Layers"].([]string), blob(d))
	}
	dm, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	steps = append(steps, add("index.json", index), add("manifest.json", dm), tw.Close())
	return errors.Join(steps...)
}
