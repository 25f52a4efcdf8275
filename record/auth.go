package record

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeAuth puts the metrics server behind Kubernetes authentication and
// authorization, the way the kubelet and controller-runtime's secure
// metrics serving do: the caller's bearer token is checked with a
// TokenReview, and a SubjectAccessReview asks whether that user may "get"
// the non-resource URL /metrics, or the resource decisions or
// recommendations of API group elmascale.io for the decisions API.
// Prometheus scrapes with its ServiceAccount token and a ClusterRole
// granting those.
type KubeAuth struct {
	Client kubernetes.Interface
	// TTL is how long an answer is reused for the same token and path, so
	// a scrape every 15 s costs the API server two reviews a minute, not
	// eight; zero means one minute.
	TTL time.Duration
	// Timeout bounds the reviews of one request; zero means 5s.
	Timeout time.Duration
	Log     *zap.Logger
	Now     func() time.Time

	mu    sync.Mutex
	cache map[authKey]authEntry
}

type authKey struct {
	token [sha256.Size]byte
	verb  string
	path  string
}

type authEntry struct {
	status  int // http.StatusOK, 401 or 403
	expires time.Time
}

// APIGroup is the API group the decisions API is authorized as: RBAC
// grants "get" on its resources decisions and recommendations. A
// non-resource URL under /api/ would not do: every cluster's
// system:discovery role lets any authenticated user get /api/*.
const APIGroup = "elmascale.io"

// apiResources maps the decisions API's paths to the resources authorized.
var apiResources = map[string]string{
	"/api/v1/decisions":       "decisions",
	"/api/v1/recommendations": "recommendations",
}

// authCacheMax bounds the cache: tokens are caller-chosen, so a flood of
// random ones must not grow it without end.
const authCacheMax = 1024

// Wrap returns h behind authentication and authorization.
func (a *KubeAuth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="elmascale"`)
			http.Error(w, "Unauthorized: a Kubernetes bearer token is required", http.StatusUnauthorized)
			return
		}
		status, err := a.check(r.Context(), token, strings.ToLower(r.Method), r.URL.Path)
		switch {
		case err != nil:
			// The reviews themselves failed (API server down): nobody
			// is let in, and the caller is told to retry, not that it
			// is unknown.
			a.log().Warn("metrics request not authorized: review failed", zap.String("path", r.URL.Path), zap.Error(err))
			http.Error(w, "Service Unavailable: cannot check the token with the API server", http.StatusServiceUnavailable)
		case status == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="elmascale"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		case status == http.StatusForbidden:
			http.Error(w, "Forbidden", http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	const p = "bearer "
	if len(v) <= len(p) || !strings.EqualFold(v[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(v[len(p):])
	return t, t != ""
}

func (a *KubeAuth) log() *zap.Logger {
	if a.Log == nil {
		return zap.NewNop()
	}
	return a.Log
}

func (a *KubeAuth) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// check returns 200, 401 or 403 for token asking verb on path.
func (a *KubeAuth) check(ctx context.Context, token, verb, path string) (int, error) {
	key := authKey{token: sha256.Sum256([]byte(token)), verb: verb, path: path}
	now := a.now()
	a.mu.Lock()
	if e, ok := a.cache[key]; ok && now.Before(e.expires) {
		a.mu.Unlock()
		return e.status, nil
	}
	a.mu.Unlock()

	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	status, err := a.review(ctx, token, verb, path)
	if err != nil {
		return 0, err
	}
	ttl := a.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil {
		a.cache = map[authKey]authEntry{}
	}
	if len(a.cache) >= authCacheMax {
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= authCacheMax {
			a.cache = map[authKey]authEntry{}
		}
	}
	a.cache[key] = authEntry{status: status, expires: now.Add(ttl)}
	return status, nil
}

func (a *KubeAuth) review(ctx context.Context, token, verb, path string) (int, error) {
	tr, err := a.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, nil
	}
	u := tr.Status.User
	extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		},
	}
	if res, ok := apiResources[path]; ok {
		sar.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Group: APIGroup, Resource: res, Verb: verb}
	} else {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: path, Verb: verb}
	}
	sar, err = a.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	if !sar.Status.Allowed {
		a.log().Info("metrics request forbidden", zap.String("user", u.Username), zap.String("verb", verb), zap.String("path", path))
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}
