package daemon_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
)

// applyMetricsAuthRBAC creates the shipped deploy/base/metrics-auth.yaml,
// names made unique to ns, elmascale's binding given to user elmascale and
// the reader's to the ServiceAccount reader in ns.
func applyMetricsAuthRBAC(t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join(kubetest.RepoRoot(), "deploy", "base", "metrics-auth.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rename := func(n string) string { return n + "-" + ns }
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ClusterRole":
			var o rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Fatal(err)
			}
			o.Name = rename(o.Name)
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Fatal(err)
			}
			o.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: testcluster.UserElmascale}}
			if o.RoleRef.Name == "elmascale-metrics-reader" {
				// The scraper's binding, given to this test's reader.
				o.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "reader", Namespace: ns}}
			}
			o.Name, o.RoleRef.Name = rename(o.Name), rename(o.RoleRef.Name)
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
		default:
			t.Fatalf("unexpected kind %q in metrics-auth.yaml", meta.Kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// saToken creates ServiceAccount name in ns and returns a token of it.
func saToken(t *testing.T, admin kubernetes.Interface, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func getWithToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Verifies on the real API server that with --metrics-auth the metrics
// server answers only a token the API server accepts whose user may get
// the URL: no token and a forged one are 401, a ServiceAccount without the
// reader role 403, the reader's token 200, on /metrics and the decisions
// API alike; the probes stay open for the kubelet.
func TestMetricsAuth(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	applyMetricsAuthRBAC(t, admin, ns)
	reader := saToken(t, admin, ns, "reader")
	stranger := saToken(t, admin, ns, "stranger")
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, configYAML(ns, 2))
	d := startDaemon(t, c, "secure", path, func(o *daemon.Options) { o.MetricsAuth = true })
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)

	for _, p := range []string{"/metrics", "/api/v1/decisions", "/api/v1/recommendations"} {
		url := "http://" + d.metrics + p
		cases := []struct {
			who, token string
			want       int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"a forged token", "not-a-token", http.StatusUnauthorized},
			{"a ServiceAccount without the reader role", stranger, http.StatusForbidden},
			{"the reader", reader, http.StatusOK},
		}
		for _, tc := range cases {
			code, body := getWithToken(t, url, tc.token)
			if code != tc.want {
				t.Errorf("%s with %s: HTTP %d, want %d (%.200s)", p, tc.who, code, tc.want, body)
			}
			if code != http.StatusOK && (strings.Contains(body, "elmascale_") || strings.Contains(body, "worker")) {
				t.Errorf("%s with %s leaks the answer: %.200s", p, tc.who, body)
			}
		}
	}
	if code, body := getWithToken(t, "http://"+d.metrics+"/metrics", reader); !strings.Contains(body, `elmascale_leader 1`) {
		t.Errorf("reader's /metrics: HTTP %d without elmascale_leader", code)
	}
	if code, _ := getWithToken(t, "http://"+d.health+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without a token: HTTP %d, want the probes open", code)
	}
}
