package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildBinary compiles elmascale the way the image ships it: static, no
// plot renderer, with a version stamped in.
func buildBinary(t *testing.T, version string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "elmascale")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "noplots",
		"-ldflags", "-s -w -X github.com/elmascale/elmascale/internal/version.Version="+version,
		"-o", out, "github.com/elmascale/elmascale/cmd/elmascale")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// Verifies the tarball end to end: it opens as a `docker save` archive and
// as an OCI layout holding the same image; the config runs the binary as
// the nonroot user with the OCI labels; the one layer holds no shell; and
// the binary extracted from the layer runs and reports its version.
func TestImageTarball(t *testing.T) {
	const version = "v0.0.0-imagetest"
	o := options{Binary: buildBinary(t, version), Version: version, Repository: "elmascale",
		Source: "https://github.com/elmascale/elmascale", Revision: "abc123", Arch: runtime.GOARCH}
	path := filepath.Join(t.TempDir(), "elmascale.tar")
	if err := writeFile(path, o); err != nil {
		t.Fatal(err)
	}

	// docker load's view: manifest.json and the tag.
	tag, err := name.NewTag("elmascale:" + version)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("not a docker archive: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/elmascale" || strings.Join(c.Cmd, " ") != "run" {
		t.Errorf("config user %q entrypoint %q cmd %q", c.User, c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": version,
		"org.opencontainers.image.source": o.Source, "org.opencontainers.image.revision": "abc123"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string][]byte{}
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name], modes[h.Name] = b, h.Mode
	}
	for _, sh := range []string{"bin/sh", "sh", "usr/bin/sh", "bin/busybox"} {
		if _, ok := files[sh]; ok {
			t.Errorf("the image holds a shell at /%s", sh)
		}
	}
	if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532") {
		t.Errorf("/etc/passwd lacks the nonroot user: %q", files["etc/passwd"])
	}
	if modes["elmascale"]&0o111 == 0 {
		t.Fatalf("/elmascale mode %o is not executable", modes["elmascale"])
	}
	bin := filepath.Join(t.TempDir(), "elmascale")
	if err := os.WriteFile(bin, files["elmascale"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("extracted binary: elmascale version = %q, %v; want %s", out, err, version)
	}

	// ctr's and docker's OCI view: the layout holds the same manifest,
	// named for containerd.
	dir := t.TempDir()
	untar(t, path, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %+v", err, im)
	}
	// The docker view synthesizes its own manifest from manifest.json, so
	// the two share the config and the layers, not the manifest digest.
	want := im.Manifests[0].Digest
	if n := im.Manifests[0].Annotations["io.containerd.image.name"]; n != "docker.io/library/elmascale:"+version {
		t.Errorf("containerd name %q", n)
	}
	limg, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	lcfg, _ := limg.ConfigName()
	dcfg, _ := img.ConfigName()
	if lcfg != dcfg {
		t.Errorf("OCI layout config %s, docker archive config %s", lcfg, dcfg)
	}
	llayers, err := limg.Layers()
	if err != nil || len(llayers) != 1 {
		t.Fatalf("layout layers %d (%v)", len(llayers), err)
	}
	// The docker reader compresses an uncompressed layer on the fly, so
	// compare what is inside: the DiffIDs.
	ld, _ := llayers[0].DiffID()
	dd, _ := layers[0].DiffID()
	if ld != dd {
		t.Errorf("layout layer %s, docker layer %s", ld, dd)
	}
	if mt, _ := limg.MediaType(); mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("layout manifest media type %s", mt)
	}
	// Every blob matches its digest (go-containerregistry verifies on read).
	if _, err := limg.RawConfigFile(); err != nil {
		t.Error(err)
	}

	// Reproducible: the same binary gives the same bytes.
	again := filepath.Join(t.TempDir(), "again.tar")
	if err := writeFile(again, o); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same binary differ")
	}
}

// Verifies that a file that is not a Linux binary is refused.
func TestRefusesNonBinary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := build(options{Binary: p, Version: "v", Repository: "elmascale", Arch: "amd64"}); err == nil {
		t.Error("a shell script was packed as the binary")
	}
}

func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, _ := io.ReadAll(tr)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
