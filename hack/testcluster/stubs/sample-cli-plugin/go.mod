// Placeholder: the module proxy does not serve k8s.io/sample-cli-plugin and
// nothing we build imports it; k8s.io/kubernetes merely lists it in its
// requirements, so an empty module satisfies the module graph.
module k8s.io/sample-cli-plugin
