{{/* The name every object carries: the release name, or release-chart. */}}
{{- define "elmascale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable for the release's lifetime. */}}
{{- define "elmascale.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "elmascale.labels" -}}
{{ include "elmascale.selectorLabels" . }}
app.kubernetes.io/part-of: elmascale
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The ELMA365 namespace, checked once for every template using it. */}}
{{- define "elmascale.targetNamespace" -}}
{{- required "elma365.namespace is required" .Values.elma365.namespace -}}
{{- end -}}

{{/*
The config the daemon runs: config.file as given, or the shipped preset
with its namespace (the config's and every PromQL selector's) set to
elma365.namespace.
*/}}
{{- define "elmascale.config" -}}
{{- $ns := include "elmascale.targetNamespace" . -}}
{{- if .Values.config.file -}}
{{- $cfg := fromYaml .Values.config.file -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "config.file is not YAML: %s" (get $cfg "Error")) -}}
{{- end -}}
{{- if ne (toString (get $cfg "namespace")) $ns -}}
{{- fail (printf "config.file has namespace %q but elma365.namespace is %q: RBAC is granted in elma365.namespace only" (toString (get $cfg "namespace")) $ns) -}}
{{- end -}}
{{- .Values.config.file -}}
{{- else -}}
{{- .Files.Get "files/elma365.yaml" | replace "\nnamespace: elma365\n" (printf "\nnamespace: %s\n" $ns) | replace "namespace=\"elma365\"" (printf "namespace=%q" $ns) -}}
{{- end -}}
{{- end -}}

{{- define "elmascale.mode" -}}
{{- if not (has .Values.mode (list "dry-run" "apply")) -}}
{{- fail (printf "mode %q: want dry-run or apply" .Values.mode) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}
