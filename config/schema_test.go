package config

import (
	"reflect"
	"strings"
	"testing"
)

// Verifies that every field of the file's shape carries the same name in
// its json tag as in its yaml tag, so the ScalingPolicy resource (whose
// schema is generated from the json names) and the file read by validate,
// recommend and simulate are one schema. apiVersion and kind belong to the
// file's header, not to a resource's spec.
func TestJSONNamesMatchYAMLNames(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	check := t
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			y := strings.Split(f.Tag.Get("yaml"), ",")[0]
			j := f.Tag.Get("json")
			p := path + "." + f.Name
			switch {
			case t == reflect.TypeOf(File{}) && (f.Name == "APIVersion" || f.Name == "Kind"):
				if j != "-" {
					check.Errorf("%s: json tag %q, want \"-\" (the resource's header is its own)", p, j)
				}
			case j != y+",omitempty":
				check.Errorf("%s: json tag %q, want %q (the yaml name, optional)", p, j, y+",omitempty")
			}
			walk(f.Type, p)
		}
	}
	walk(reflect.TypeOf(File{}), "File")
}
