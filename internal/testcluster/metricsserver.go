package testcluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

const metricsAPIServiceName = "v1beta1.metrics.k8s.io"

// startMetricsServer runs metrics-server on 127.0.0.1:port and registers it
// with the aggregation layer through an ExternalName Service (there is no
// pod network, so the Service just names the loopback address).
func (c *Cluster) startMetricsServer(ctx context.Context, binary, logPath, kubeconfig string, pki *pkiFiles, port int) error {
	ms := newProcess("metrics-server", binary, logPath,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+pki.MetricsServerCert,
		"--tls-private-key-file="+pki.MetricsKey,
		// The fake kubelet is KWOK's server at the node's InternalIP and
		// status port; it serves a self-signed certificate.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-use-node-status-port",
		"--kubelet-insecure-tls",
		// 10s is the shortest resolution metrics-server accepts, and it
		// panics unless the kubelet timeout is below the resolution.
		"--metric-resolution=10s",
		"--kubelet-request-timeout=5s",
	)
	if err := c.launch(ms); err != nil {
		return err
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: metricsServerName, Namespace: metav1.NamespaceSystem},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "127.0.0.1",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}},
		},
	}
	if err := c.waitFor(ctx, "create Service kube-system/"+metricsServerName, func(ctx context.Context) error {
		_, err := c.admin.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}

	dyn, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": metricsAPIServiceName},
		"spec": map[string]any{
			"group":                "metrics.k8s.io",
			"version":              "v1beta1",
			"groupPriorityMinimum": int64(100),
			"versionPriority":      int64(100),
			// Verify metrics-server's certificate against the test CA
			// rather than skipping verification.
			"caBundle": pki.caPEM,
			"service": map[string]any{
				"namespace": metav1.NamespaceSystem,
				"name":      metricsServerName,
				"port":      int64(port),
			},
		},
	}}
	return c.waitFor(ctx, "create APIService "+metricsAPIServiceName, func(ctx context.Context) error {
		_, err := dyn.Resource(apiServiceGVR).Create(ctx, apiService, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// waitMetricsAPIAvailable waits until the aggregator reports the metrics
// APIService Available, i.e. it can reach metrics-server. Metric values
// themselves arrive later (two scrapes, 10 s apart).
func (c *Cluster) waitMetricsAPIAvailable(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "APIService "+metricsAPIServiceName+" Available", func(ctx context.Context) error {
		obj, err := dyn.Resource(apiServiceGVR).Get(ctx, metricsAPIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, raw := range conds {
			cond, _ := raw.(map[string]any)
			if cond["type"] == "Available" {
				if cond["status"] == "True" {
					return nil
				}
				return fmt.Errorf("Available=%v: %v: %v", cond["status"], cond["reason"], cond["message"])
			}
		}
		return errors.New("no Available condition yet")
	})
}
