package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decode reads one YAML document into a File. It fails only when the text
// is not one YAML document; every other problem (an unknown field, a key
// set twice, a value of the wrong type, a bad duration) comes back in the
// list, once, with its path and line, beside the File holding every value
// that did decode. A field whose value is wrong stays unset, so the
// compiler applies its default instead of judging a value nobody wrote.
//
// The walk is typed, rather than yaml.v3's Decode or a YAML-to-JSON strict
// decoder, because those stop at, or report only, the first type error,
// truncate 2.9 to 2 in an integer field, and lose the path of the value.
func decode(data []byte) (*File, Errors, error) {
	f, _, errs, err := decodeDocument(data)
	return f, errs, err
}

// decodeDocument is decode that also says whether the document was a
// ScalingPolicy resource rather than a file.
func decodeDocument(data []byte) (*File, bool, Errors, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, nil, fmt.Errorf("config is empty")
		}
		return nil, false, nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, false, nil, fmt.Errorf("config holds more than one YAML document")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil, false, nil, fmt.Errorf("config is empty")
	}
	if doc.Kind != yaml.MappingNode {
		return nil, false, nil, fmt.Errorf("config must be a mapping of fields (apiVersion, kind, services, ...), not %s", describe(doc))
	}
	d := &decoder{}
	var f File
	if isResource(doc) {
		d.resource(doc, &f)
		return &f, true, d.errs, nil
	}
	d.value(doc, reflect.ValueOf(&f).Elem(), "", 0)
	return &f, false, d.errs, nil
}

// fieldError is one decoding problem: a path, a line and what is wrong.
type fieldError struct {
	Path string
	Line int
	Msg  string
}

func (e *fieldError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s (line %d)", e.Msg, e.Line)
	}
	return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
}

// maxDepth bounds the walk; aliases can nest a document far deeper than
// its text.
const maxDepth = 64

var durationType = reflect.TypeOf(Duration(0))

type decoder struct{ errs Errors }

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &fieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

// value decodes n into v and reports whether it did; on failure v is left
// as it was.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, depth int) bool {
	if depth > maxDepth {
		d.fail(n, path, "nested more than %d levels deep", maxDepth)
		return false
	}
	if n.Kind == yaml.AliasNode {
		return d.value(n.Alias, v, path, depth+1)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true // unset: the field keeps its zero value and default
	}
	t := v.Type()
	switch {
	case t == durationType:
		return d.duration(n, v, path)
	case t.Kind() == reflect.Pointer:
		// A scalar that failed stays unset, so its default applies; a
		// mapping with one bad field keeps the fields that decoded, so
		// they are still checked.
		p := reflect.New(t.Elem())
		ok := d.value(n, p.Elem(), path, depth+1)
		if ok || (t.Elem().Kind() == reflect.Struct && resolve(n).Kind == yaml.MappingNode) {
			v.Set(p)
		}
		return ok
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.structure(n, v, path, depth)
	case reflect.Map:
		return d.mapping(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list, not %s", describe(n))
			return false
		}
		out := reflect.MakeSlice(t, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			e := reflect.New(t.Elem()).Elem()
			ok = d.value(c, e, fmt.Sprintf("%s[%d]", path, i), depth+1) && ok
			out = reflect.Append(out, e)
		}
		v.Set(out)
		return ok
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "must be a string, not %s", describe(n))
			return false
		}
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "must be true or false, not %s", describe(n))
			return false
		}
		v.SetBool(b)
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return d.integer(n, v, path)
	case reflect.Float32, reflect.Float64:
		f, ok := number(n)
		if !ok {
			d.fail(n, path, "must be a number, not %s", describe(n))
			return false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "must be a finite number, not %s", n.Value)
			return false
		}
		v.SetFloat(f)
		return true
	}
	d.fail(n, path, "cannot be decoded into %s", t)
	return false
}

// integer accepts a whole number within the field's range: 2.9 is not
// taken as 2, and 99999999999 is not wrapped around.
func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) bool {
	bits := v.Type().Bits()
	lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
	var i int64
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
		if n.Decode(&i) != nil || i < lo || i > hi {
			d.fail(n, path, "%s is out of range (at most %d)", n.Value, hi)
			return false
		}
	case n.Kind == yaml.ScalarNode && n.Tag == "!!float":
		f, _ := number(n)
		if f != math.Trunc(f) || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "must be a whole number, not %s", n.Value)
			return false
		}
		if f < float64(lo) || f > float64(hi) {
			d.fail(n, path, "%s is out of range (at most %d)", n.Value, hi)
			return false
		}
		i = int64(f)
	default:
		d.fail(n, path, "must be a whole number, not %s", describe(n))
		return false
	}
	v.SetInt(i)
	return true
}

// number reads an int or float scalar; quoted text is not a number.
func number(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return 0, false
	}
	return f, true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "must be a duration like 30s, 500ms or 5m, not %s", describe(n))
		return false
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if _, nerr := strconv.ParseFloat(n.Value, 64); nerr == nil {
			d.fail(n, path, "duration %s has no unit: write %ss, %sms or %sm", n.Value, n.Value, n.Value, n.Value)
		} else {
			d.fail(n, path, "must be a duration like 30s, 500ms or 5m, not %q", n.Value)
		}
		return false
	}
	v.SetInt(int64(dur))
	return true
}

// structure decodes a mapping into a struct by its yaml tags, reporting
// unknown keys and keys set twice.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) bool {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of fields, not %s", describe(n))
		return false
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	ok := true
	seen := map[string]int{}
	for _, kv := range d.pairs(n, path, depth) {
		key := kv.key.Value
		p := join(path, key)
		if line, dup := seen[key]; dup {
			d.fail(kv.key, p, "set twice (lines %d and %d)", line, kv.key.Line)
			ok = false
			continue
		}
		seen[key] = kv.key.Line
		i, known := fields[key]
		if !known {
			msg := "unknown field"
			if s := Suggest(key, names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.fail(kv.key, p, "%s", msg)
			ok = false
			continue
		}
		ok = d.value(kv.value, v.Field(i), p, depth+1) && ok
	}
	return ok
}

// mapping decodes a mapping into a map with string keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) bool {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of names, not %s", describe(n))
		return false
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "cannot be decoded into %s", t)
		return false
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	ok := true
	seen := map[string]int{}
	for _, kv := range d.pairs(n, path, depth) {
		key := kv.key.Value
		p := join(path, key)
		if line, dup := seen[key]; dup {
			d.fail(kv.key, p, "set twice (lines %d and %d)", line, kv.key.Line)
			ok = false
			continue
		}
		seen[key] = kv.key.Line
		// The entry is kept even when part of it failed, so a service
		// with one bad field is still known to the rest of the config
		// (dependsOn, cycles) and its other fields are still checked.
		e := reflect.New(t.Elem()).Elem()
		ok = d.value(kv.value, e, p, depth+1) && ok
		v.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
	}
	return ok
}

type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's keys and values with YAML merge keys (<<)
// expanded; the mapping's own keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a plain name, not %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			for _, m := range mergeSources(val) {
				if m.Kind != yaml.MappingNode || depth > maxDepth {
					d.fail(val, path, "<< must merge a mapping, not %s", describe(m))
					continue
				}
				merged = append(merged, d.pairs(m, path, depth+1)...)
			}
			continue
		}
		own = append(own, pair{k, val})
	}
	if len(merged) == 0 {
		return own
	}
	mine := map[string]bool{}
	for _, p := range own {
		mine[p.key.Value] = true
	}
	out := own
	seen := map[string]bool{}
	for _, p := range merged {
		if !mine[p.key.Value] && !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func mergeSources(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return []*yaml.Node{n}
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			c = c.Alias
		}
		out = append(out, c)
	}
	return out
}

// describe names what a node holds, for "must be X, not Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return describe(n.Alias)
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "nothing"
}

// Suggest returns the known name a mistyped one most likely meant: one
// that differs only in case, or by at most two edits; "" when none is that
// close. The command line names misspelt keys of other inputs with it too.
func Suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		if dist := editDistance(strings.ToLower(key), strings.ToLower(n)); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// withoutFollowOns drops the compiler's complaints about values the
// decoder already refused: a field left unset by a type error must not be
// reported again as out of range, nor named by its parent's cross-field
// checks ("minReplicas 2 must be <= maxReplicas 0").
func withoutFollowOns(compileErrs, decodeErrs Errors) Errors {
	var failed []string
	for _, e := range decodeErrs {
		var fe *fieldError
		if errors.As(e, &fe) && fe.Path != "" {
			failed = append(failed, fe.Path)
		}
	}
	var out Errors
	for _, e := range compileErrs {
		path, msg, _ := strings.Cut(e.Error(), ": ")
		if !followsOn(path, msg, failed) {
			out = append(out, e)
		}
	}
	return out
}

func followsOn(path, msg string, failed []string) bool {
	for _, f := range failed {
		if path == f || strings.HasPrefix(path, f+".") || strings.HasPrefix(path, f+"[") {
			return true
		}
		parent, last := splitPath(f)
		if path == parent && strings.Contains(msg, last) {
			return true
		}
	}
	return false
}

// splitPath splits a.b.c into a.b and c, and a.b[2] into a.b and b[2]'s
// field b.
func splitPath(p string) (parent, last string) {
	if i := strings.LastIndex(p, "["); i > strings.LastIndex(p, ".") {
		p = p[:i]
	}
	i := strings.LastIndex(p, ".")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
