package testcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for any test run and short enough that a
// leaked temp directory holds nothing useful for long.
const certValidity = 24 * time.Hour

// authority is a certificate authority held in memory while the cluster's
// certificates are issued.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// keyPair is an issued certificate with its private key, PEM encoded.
type keyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// newAuthority creates a self-signed CA. ECDSA P-256 keeps generation fast;
// every component in the stack accepts it.
func newAuthority(commonName string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// leafSpec describes a certificate to issue. Client certificates carry the
// user in CommonName and its groups in Organization, which is how
// kube-apiserver's x509 authenticator reads them.
type leafSpec struct {
	CommonName   string
	Organization []string
	Server       bool
	Client       bool
	DNSNames     []string
	IPs          []net.IP
}

func (a *authority) issue(spec leafSpec) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate key for %s: %w", spec.CommonName, err)
	}
	var usages []x509.ExtKeyUsage
	if spec.Server {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if spec.Client {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		DNSNames:     spec.DNSNames,
		IPAddresses:  spec.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return keyPair{}, fmt.Errorf("sign %s: %w", spec.CommonName, err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  keyPEM,
	}, nil
}

func (a *authority) keyPEM() ([]byte, error) { return privateKeyPEM(a.key) }

func privateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// pkiFiles are the paths of every PEM file the components read.
type pkiFiles struct {
	CACert, CAKey                   string
	APIServerCert, APIServerKey     string
	SAPublic, SAPrivate             string
	FrontProxyCA                    string
	FrontProxyCert, FrontProxyKey   string
	MetricsServerCert, MetricsKey   string
	TokenFile                       string
	caPEM, frontProxyCAPEM          []byte
	admin, controllerMgr, scheduler keyPair
}

// writePKI issues every certificate and key the control plane needs and
// writes them under dir/pki. The elmascale token goes into a static token
// file with no groups, so the user has only what RBAC grants it.
func writePKI(dir, elmascaleToken string) (*pkiFiles, error) {
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, err
	}
	p := func(name string) string { return filepath.Join(pki, name) }
	f := &pkiFiles{
		CACert: p("ca.crt"), CAKey: p("ca.key"),
		APIServerCert: p("apiserver.crt"), APIServerKey: p("apiserver.key"),
		SAPublic: p("sa.pub"), SAPrivate: p("sa.key"),
		FrontProxyCA:   p("front-proxy-ca.crt"),
		FrontProxyCert: p("front-proxy-client.crt"), FrontProxyKey: p("front-proxy-client.key"),
		MetricsServerCert: p("metrics-server.crt"), MetricsKey: p("metrics-server.key"),
		TokenFile: p("tokens.csv"),
	}

	ca, err := newAuthority("elmascale-testcluster-ca")
	if err != nil {
		return nil, err
	}
	// The aggregation layer must use its own CA: a front-proxy client cert
	// signed by the main CA would also be accepted as an ordinary client cert
	// for user "front-proxy-client", which is not what a real cluster does.
	frontCA, err := newAuthority("elmascale-testcluster-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	f.caPEM, f.frontProxyCAPEM = ca.certPEM, frontCA.certPEM

	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	serving, err := ca.issue(leafSpec{
		CommonName: "kube-apiserver",
		Server:     true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs: append(loopback, net.ParseIP(kubernetesServiceIP)),
	})
	if err != nil {
		return nil, err
	}
	// kube-apiserver dials the ExternalName service at 127.0.0.1 but checks
	// the certificate against <service>.<namespace>.svc.
	metricsServing, err := ca.issue(leafSpec{
		CommonName: "metrics-server",
		Server:     true,
		DNSNames:   []string{"localhost", metricsServerName + ".kube-system.svc"},
		IPs:        loopback,
	})
	if err != nil {
		return nil, err
	}
	if f.admin, err = ca.issue(leafSpec{CommonName: "testcluster-admin", Organization: []string{"system:masters"}, Client: true}); err != nil {
		return nil, err
	}
	if f.controllerMgr, err = ca.issue(leafSpec{CommonName: "system:kube-controller-manager", Client: true}); err != nil {
		return nil, err
	}
	if f.scheduler, err = ca.issue(leafSpec{CommonName: "system:kube-scheduler", Client: true}); err != nil {
		return nil, err
	}
	frontClient, err := frontCA.issue(leafSpec{CommonName: frontProxyClientName, Client: true})
	if err != nil {
		return nil, err
	}

	// Service-account tokens are signed with a key of their own.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	saPrivPEM, err := privateKeyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := ca.keyPEM()
	if err != nil {
		return nil, err
	}

	// Static token file format: token,user,uid[,"group1,group2"]. No group
	// column: the elmascale user must earn every permission through RBAC.
	tokens := fmt.Sprintf("%s,%s,%s\n", elmascaleToken, UserElmascale, "elmascale-uid")

	files := map[string][]byte{
		f.CACert:            ca.certPEM,
		f.CAKey:             caKeyPEM,
		f.APIServerCert:     serving.CertPEM,
		f.APIServerKey:      serving.KeyPEM,
		f.SAPrivate:         saPrivPEM,
		f.SAPublic:          pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		f.FrontProxyCA:      frontCA.certPEM,
		f.FrontProxyCert:    frontClient.CertPEM,
		f.FrontProxyKey:     frontClient.KeyPEM,
		f.MetricsServerCert: metricsServing.CertPEM,
		f.MetricsKey:        metricsServing.KeyPEM,
		f.TokenFile:         []byte(tokens),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}
