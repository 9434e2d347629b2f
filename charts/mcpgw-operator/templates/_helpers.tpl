{{- /* Names, labels and derived settings shared by the chart's templates. */ -}}

{{- define "mcpgw.operatorServiceAccount" -}}
{{- default (printf "%s-operator" .Release.Name) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "mcpgw.callbackServiceAccount" -}}
{{- default (printf "%s-callback" .Release.Name) (dig "callback" "serviceAccount" "name" "" .Values.AsMap) -}}
{{- end -}}

{{- /* Name of the callback Deployment and Service the operator creates (MCPGW_CALLBACK_NAME). */ -}}
{{- define "mcpgw.callbackName" -}}
{{- printf "%s-callback" .Release.Name -}}
{{- end -}}

{{- define "mcpgw.redisName" -}}
{{- printf "%s-redis" .Release.Name -}}
{{- end -}}

{{- define "mcpgw.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "mcpgw.labels" -}}
app.kubernetes.io/name: mcpgw-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "mcpgw.operatorSelector" -}}
app.kubernetes.io/name: mcpgw-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- /* Must equal callback_manifests.selector_labels(): the operator labels the callback pods. */ -}}
{{- define "mcpgw.callbackSelector" -}}
app.kubernetes.io/name: mcpgw-callback
app.kubernetes.io/instance: {{ include "mcpgw.callbackName" . }}
{{- end -}}

{{- define "mcpgw.redisSelector" -}}
app.kubernetes.io/name: mcpgw-redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- /*
The callback's public base URL: callback.publicURL, else the Ingress host, else the loopback
URL a developer reaches through `kubectl port-forward` (the operator's own default).
*/ -}}
{{- define "mcpgw.publicURL" -}}
{{- $cb := .Values.callback -}}
{{- if $cb.publicURL -}}
{{- trimSuffix "/" $cb.publicURL -}}
{{- else if and $cb.ingress.enabled $cb.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" $cb.ingress.tls.enabled) $cb.ingress.host -}}
{{- else -}}
http://127.0.0.1:18080
{{- end -}}
{{- end -}}

{{- /* The Redis URL when it is not in a Secret; empty when it is. */ -}}
{{- define "mcpgw.redisURL" -}}
{{- if eq .Values.redis.mode "bundled" -}}
{{- printf "redis://%s.%s.svc:6379/0" (include "mcpgw.redisName" .) .Release.Namespace -}}
{{- else if not .Values.redis.external.existingSecret.name -}}
{{- .Values.redis.external.url -}}
{{- end -}}
{{- end -}}

{{- /* Restricted Pod Security Standard, container level. */ -}}
{{- define "mcpgw.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
