{{- define "mcpgw.operatorServiceAccount" -}}
{{- default (printf "%s-operator" .Release.Name) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "mcpgw.labels" -}}
app.kubernetes.io/name: mcpgw-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
