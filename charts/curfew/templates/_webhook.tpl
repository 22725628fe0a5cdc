{{- /* Names and operator-container pieces of the sidecar-injection webhook (injection.*). */}}

{{- define "curfew.injection.name" -}}
{{- printf "%s-injection" (include "curfew.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "curfew.injection.service" -}}
{{- printf "%s-webhook" (include "curfew.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "curfew.injection.tlsSecret" -}}
{{- printf "%s-webhook-tls" (include "curfew.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "curfew.injection.certManager" -}}
{{- if .Values.injection.tls.certManager.enabled }}true{{ end }}
{{- end }}

{{- define "curfew.injection.sidecarImage" -}}
{{- default (include "curfew.image" .) .Values.injection.sidecar.image }}
{{- end }}

{{/* Settings of the webhook in the operator (CURFEW_INJECTION_*, see docs/injection.md). */}}
{{- define "curfew.injection.env" -}}
{{- if .Values.injection.enabled }}
- name: CURFEW_INJECTION_ENABLED
  value: "true"
- name: CURFEW_INJECTION_PORT
  value: {{ .Values.injection.port | quote }}
- name: CURFEW_INJECTION_SERVICE
  value: {{ include "curfew.injection.service" . | quote }}
- name: CURFEW_INJECTION_NAMESPACE
  value: {{ .Release.Namespace | quote }}
{{- if include "curfew.injection.certManager" . }}
- name: CURFEW_INJECTION_TLS_DIR
  value: /etc/curfew/webhook-tls
{{- else }}
- name: CURFEW_INJECTION_TLS_SECRET
  value: {{ include "curfew.injection.tlsSecret" . | quote }}
- name: CURFEW_INJECTION_WEBHOOK_CONFIGURATION
  value: {{ include "curfew.injection.name" . | quote }}
{{- end }}
- name: CURFEW_INJECTION_IMAGE
  value: {{ include "curfew.injection.sidecarImage" . | quote }}
- name: CURFEW_INJECTION_IMAGE_PULL_POLICY
  value: {{ .Values.injection.sidecar.pullPolicy | quote }}
- name: CURFEW_INJECTION_OPS_PORT
  value: {{ .Values.injection.sidecar.opsPort | quote }}
- name: CURFEW_INJECTION_RUN_AS_USER
  value: {{ .Values.injection.sidecar.runAsUser | quote }}
- name: CURFEW_INJECTION_RESOURCES
  value: {{ .Values.injection.sidecar.resources | toJson | quote }}
{{- end }}
{{- end }}

{{- define "curfew.injection.ports" -}}
{{- if .Values.injection.enabled }}
- name: webhook
  containerPort: {{ .Values.injection.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{- define "curfew.injection.volumeMounts" -}}
{{- if and .Values.injection.enabled (include "curfew.injection.certManager" .) }}
- name: webhook-tls
  mountPath: /etc/curfew/webhook-tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "curfew.injection.volumes" -}}
{{- if and .Values.injection.enabled (include "curfew.injection.certManager" .) }}
- name: webhook-tls
  secret:
    secretName: {{ include "curfew.injection.tlsSecret" . }}
{{- end }}
{{- end }}

{{/* Namespaces no pod is ever injected in: the configured ones and Curfew's own. */}}
{{- define "curfew.injection.namespaceTerms" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
    {{- range (append .Values.injection.excludeNamespaces .Release.Namespace) | uniq }}
    - {{ . | quote }}
    {{- end }}
{{- with .Values.watchNamespaces }}
- key: kubernetes.io/metadata.name
  operator: In
  values:
    {{- range . }}
    - {{ . | quote }}
    {{- end }}
{{- end }}
{{- end }}
