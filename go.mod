module github.com/elmascale/elmascale

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/client-go v0.37.2 // indirect
	k8s.io/metrics v0.37.2 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
