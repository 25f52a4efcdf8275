package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// ResourceKind is the kind of a configuration kept in the Kubernetes API: a
// ScalingPolicy whose spec is a configuration file without its apiVersion
// and kind. Parse takes either form, so the file a person validates,
// simulates and recommends with is the one they kubectl apply.
const ResourceKind = "ScalingPolicy"

// resourceHeader is what a ScalingPolicy document says outside its spec.
type resourceHeader struct {
	Name, Namespace string
}

// isResource reports whether the top-level mapping declares kind
// ScalingPolicy.
func isResource(doc *yaml.Node) bool {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], resolve(doc.Content[i+1])
		if k.Value == "kind" && v.Kind == yaml.ScalarNode {
			return v.Value == ResourceKind
		}
	}
	return false
}

// resource decodes a ScalingPolicy document into f: the header's
// apiVersion, the spec's fields (their paths under spec), the namespace
// from metadata when the spec names none. Status is elmascale's own
// output and is passed over, so `kubectl get -o yaml` output validates.
func (d *decoder) resource(doc *yaml.Node, f *File) resourceHeader {
	var h resourceHeader
	f.Kind = Kind
	var spec *yaml.Node
	seen := map[string]int{}
	for _, kv := range d.pairs(doc, "", 0) {
		key := kv.key.Value
		if line, dup := seen[key]; dup {
			d.fail(kv.key, key, "set twice (lines %d and %d)", line, kv.key.Line)
			continue
		}
		seen[key] = kv.key.Line
		switch key {
		case "apiVersion":
			d.value(kv.value, reflect.ValueOf(&f.APIVersion).Elem(), key, 1)
		case "kind", "status":
		case "metadata":
			h = d.metadata(kv.value)
		case "spec":
			spec = resolve(kv.value)
		default:
			msg := "unknown field"
			if s := Suggest(key, []string{"apiVersion", "kind", "metadata", "spec", "status"}); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.fail(kv.key, key, "%s", msg)
		}
	}
	if spec == nil {
		d.fail(doc, "spec", "missing: a %s holds its configuration in spec", ResourceKind)
		return h
	}
	if spec.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(spec.Content); i += 2 {
			if k := spec.Content[i]; k.Value == "apiVersion" || k.Value == "kind" {
				d.fail(k, "spec."+k.Value, "unknown field: a %s's %s is at its top, not in its spec", ResourceKind, k.Value)
			}
		}
		spec = withoutKeys(spec, "apiVersion", "kind")
	}
	d.value(spec, reflect.ValueOf(f).Elem(), "spec", 1)
	switch {
	case f.Namespace == "":
		f.Namespace = h.Namespace
	case h.Namespace != "" && f.Namespace != h.Namespace:
		d.errs = append(d.errs, &fieldError{Path: "spec.namespace", Line: spec.Line,
			Msg: fmt.Sprintf("is %q, but the %s is in namespace %q: a policy manages its own namespace (leave spec.namespace out)", f.Namespace, ResourceKind, h.Namespace)})
	}
	return h
}

// metadata reads the name and namespace; the rest of Kubernetes' object
// metadata (labels, annotations, managedFields...) is the API server's.
func (d *decoder) metadata(n *yaml.Node) resourceHeader {
	var h resourceHeader
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n, "metadata", "must be a mapping of fields, not %s", describe(n))
		return h
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch k.Value {
		case "name", "namespace":
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				d.fail(v, "metadata."+k.Value, "must be a string, not %s", describe(v))
				continue
			}
			if k.Value == "name" {
				h.Name = v.Value
			} else {
				h.Namespace = v.Value
			}
		}
	}
	return h
}

// withoutKeys copies a mapping node without the given keys.
func withoutKeys(n *yaml.Node, keys ...string) *yaml.Node {
	out := *n
	out.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		drop := false
		for _, k := range keys {
			drop = drop || n.Content[i].Value == k
		}
		if !drop {
			out.Content = append(out.Content, n.Content[i], n.Content[i+1])
		}
	}
	return &out
}

// underSpec puts a compile error of a resource's configuration under spec,
// where kubectl and the API server place it; apiVersion stays at the top.
func underSpec(errs Errors) Errors {
	out := make(Errors, len(errs))
	for i, err := range errs {
		msg := err.Error()
		if strings.HasPrefix(msg, "apiVersion:") || strings.HasPrefix(msg, "kind:") {
			out[i] = err
			continue
		}
		out[i] = &prefixed{prefix: "spec.", err: err}
	}
	return out
}

type prefixed struct {
	prefix string
	err    error
}

func (p *prefixed) Error() string { return p.prefix + p.err.Error() }
func (p *prefixed) Unwrap() error { return p.err }

// AsResource turns a configuration file into the ScalingPolicy named name
// holding the same configuration, comments kept: its namespace moves into
// metadata (namespace, when given, overrides it), every other field into
// spec.
func AsResource(file []byte, name, namespace string) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(file, &root); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config must be a mapping of fields")
	}
	doc := root.Content[0]
	if isResource(doc) {
		return nil, fmt.Errorf("config is a %s already", ResourceKind)
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	spec := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "apiVersion", "kind":
		case "namespace":
			if namespace == "" {
				namespace = resolve(v).Value
			}
		default:
			spec.Content = append(spec.Content, k, v)
		}
	}
	if namespace == "" {
		return nil, fmt.Errorf("config names no namespace; a %s lives in the namespace it manages", ResourceKind)
	}
	meta := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str("name"), str(name), str("namespace"), str(namespace)}}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: doc.HeadComment, Content: []*yaml.Node{
		str("apiVersion"), str(APIVersion), str("kind"), str(ResourceKind), str("metadata"), meta, str("spec"), spec,
	}}
	root.Content[0] = out
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
