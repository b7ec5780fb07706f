{{/* The chart's name, or nameOverride. */}}
{{- define "kci-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' name: the release's, with the chart's name unless it already has it. */}}
{{- define "kci-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "kci-webhook.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Selects the webhook's pods (Deployment, Service, PDB, anti-affinity). */}}
{{- define "kci-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kci-webhook.name" . }}
{{- end -}}

{{- define "kci-webhook.labels" -}}
{{ include "kci-webhook.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kci-webhook.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "kci-webhook.tlsSecretName" -}}
{{- if and (eq .Values.certificates.mode "secret") .Values.certificates.secret.name -}}
{{- .Values.certificates.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "kci-webhook.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Service's DNS names: the API server calls SERVICE.NAMESPACE.svc. */}}
{{- define "kci-webhook.dnsNames" -}}
{{- $service := include "kci-webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "%s.%s.svc.cluster.local" $service $ns) | toJson -}}
{{- end -}}

{{/* The namespaces neither webhook is called for: the config's exclude list and the
     release's own namespace (the webhook must always be able to start its replicas). The
     server writes this term itself when it activates the configurations; the chart uses
     it to show what that will be (NOTES.txt). */}}
{{- define "kci-webhook.excluded" -}}
{{- concat (.Values.config.exclude.namespaces | default list) (list .Release.Namespace) | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* One webhook entry's failurePolicy and namespaceSelector.
     Shipped inert: the term `kubernetes.io/metadata.name DoesNotExist` selects no
     namespace (the API server sets that label on every namespace and puts it back if
     removed) and failurePolicy is Ignore, so nothing calls the webhook before a replica
     serves. A replica that serves replaces that term with `NotIn` the excluded
     namespaces and sets the failurePolicy (webhook.adapters.registration). On upgrade the
     live entry's term and failurePolicy are kept (lookup), so `helm upgrade` never turns
     an active webhook off; the other terms are webhook.namespaceSelector's, ANDed. */}}
{{- define "kci-webhook.activation" -}}
{{- $entry := dict -}}
{{- range (dig "webhooks" list (.live | default dict)) -}}
{{- if eq (dig "name" "" .) $.name }}{{ $entry = . }}{{ end -}}
{{- end -}}
{{- $term := dict "key" "kubernetes.io/metadata.name" "operator" "DoesNotExist" -}}
{{- $policy := "Ignore" -}}
{{- if $entry -}}
{{- range (dig "namespaceSelector" "matchExpressions" list $entry) -}}
{{- if eq (dig "key" "" .) "kubernetes.io/metadata.name" }}{{ $term = . }}{{ end -}}
{{- end -}}
{{- $policy = dig "failurePolicy" "Ignore" $entry -}}
{{- end -}}
{{- $selector := .root.Values.webhook.namespaceSelector -}}
failurePolicy: {{ $policy }}
namespaceSelector:
  {{- if $selector.matchLabels }}
  matchLabels:
    {{- toYaml $selector.matchLabels | nindent 4 }}
  {{- end }}
  matchExpressions:
    {{- toYaml (prepend ($selector.matchExpressions | default list) $term) | nindent 4 }}
{{- end -}}

{{- define "kci-webhook.clientConfig" -}}
service:
  name: {{ include "kci-webhook.fullname" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- with .caBundle }}
caBundle: {{ . }}
{{- end }}
{{- end -}}

{{/* Selects the node-config DaemonSet's pods; never the webhook's. */}}
{{- define "kci-webhook.nodeConfigSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kci-webhook.name" . }}-node-config
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kci-webhook.nodeConfigLabels" -}}
{{ include "kci-webhook.nodeConfigSelectorLabels" . }}
app.kubernetes.io/component: node-config
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The config file's text: the release's ConfigMap and the config check hook's carry
     the same. Refused here, at render, what a template can tell: a mirror-check budget
     that leaves no room in the webhook's timeout (the loader's rule: at most the timeout
     less 1 s, or less half of it under 2 s). */}}
{{- define "kci-webhook.configYaml" -}}
{{- $timeout := float64 .Values.webhook.timeoutSeconds -}}
{{- $limit := subf $timeout (minf 1.0 (divf $timeout 2.0)) -}}
{{- $budget := dig "mirrorChecks" "budgetSeconds" nil (.Values.config | default dict) -}}
{{- if and (not (kindIs "invalid" $budget)) (gt (float64 $budget) $limit) -}}
{{- fail (printf "config.mirrorChecks.budgetSeconds: %v s leaves too little of the webhook's %v s timeout (webhook.timeoutSeconds) for the rest of the request: at most %v s" $budget .Values.webhook.timeoutSeconds $limit) -}}
{{- end -}}
{{- toYaml .Values.config -}}
{{- end -}}
