{{/* Names, labels, images, pod security and the settings every program shares. */}}

{{- define "tumorsearch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-tumorsearch, cut to leave room for the longest component suffix ("-listener-tls" etc.). */}}
{{- define "tumorsearch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "tumorsearch.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "tumorsearch.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tumorsearch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "listener"). */}}
{{- define "tumorsearch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tumorsearch.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tumorsearch.labels" -}}
{{ include "tumorsearch.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "tumorsearch.chart" .root }}
{{- end -}}

{{/* registry/repository:tag; call with (dict "root" $ "image" .Values.listener.image). */}}
{{- define "tumorsearch.image" -}}
{{- $registry := .root.Values.image.registry -}}
{{- printf "%s%s:%s" (ternary (printf "%s/" $registry) "" (ne $registry "")) .image.repository (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "tumorsearch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tumorsearch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Pod-level fields every pod of the chart has: non-root uid/gid 10001 (the images' user), no API token. */}}
{{- define "tumorsearch.podCommon" -}}
serviceAccountName: {{ include "tumorsearch.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  # A study volume holds millions of files: chown them only when the volume's root is not ours yet.
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "tumorsearch.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{- define "tumorsearch.dataClaimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "tumorsearch.fullname" .)) -}}
{{- end -}}

{{/* The shared data volume and a writable /tmp (the root filesystem is read-only). */}}
{{- define "tumorsearch.dataVolumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "tumorsearch.dataClaimName" . }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}

{{- define "tumorsearch.dataMounts" -}}
- name: data
  mountPath: /var/lib/tumorsearch
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "tumorsearch.redisHost" -}}{{ include "tumorsearch.fullname" . }}-redis{{- end -}}
{{- define "tumorsearch.qdrantHost" -}}{{ include "tumorsearch.fullname" . }}-qdrant{{- end -}}

{{- define "tumorsearch.redisSecretName" -}}
{{- .Values.redis.existingSecret | default (printf "%s-redis" (include "tumorsearch.fullname" .)) -}}
{{- end -}}

{{- define "tumorsearch.qdrantSecretName" -}}
{{- .Values.qdrant.existingSecret | default (printf "%s-qdrant" (include "tumorsearch.fullname" .)) -}}
{{- end -}}

{{/* TUMORSEARCH_HOME, logging and the broker: what the listener, the worker and the gateway all read. */}}
{{- define "tumorsearch.commonEnv" -}}
- name: TUMORSEARCH_HOME
  value: /var/lib/tumorsearch
- name: TUMORSEARCH_LOG__LEVEL
  value: {{ .Values.log.level | quote }}
- name: TUMORSEARCH_LOG__FORMAT
  value: {{ .Values.log.format | quote }}
{{- if or .Values.redis.enabled .Values.redis.existingSecret }}
# A URL with a password is a secret: it comes from the Secret, never from the pod spec.
- name: TUMORSEARCH_BROKER__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tumorsearch.redisSecretName" . }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: TUMORSEARCH_BROKER__URL
  value: {{ .Values.redis.url | quote }}
{{- else }}
{{- fail "redis.enabled=false needs redis.url or redis.existingSecret (the external Redis)" }}
{{- end }}
{{- end -}}

{{/* The vector store: read by the worker and the gateway. */}}
{{- define "tumorsearch.vectorStoreEnv" -}}
{{- if .Values.qdrant.enabled }}
- name: TUMORSEARCH_VECTOR_STORE__URL
  value: {{ printf "http://%s:6333" (include "tumorsearch.qdrantHost" .) | quote }}
{{- else if .Values.qdrant.url }}
- name: TUMORSEARCH_VECTOR_STORE__URL
  value: {{ .Values.qdrant.url | quote }}
{{- else }}
{{- fail "qdrant.enabled=false needs qdrant.url (the external Qdrant)" }}
{{- end }}
{{- if or .Values.qdrant.enabled .Values.qdrant.existingSecret }}
- name: TUMORSEARCH_VECTOR_STORE__API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "tumorsearch.qdrantSecretName" . }}
      key: {{ .Values.qdrant.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* Extra TUMORSEARCH_* variables of one component (the schema allows only TUMORSEARCH_* names). */}}
{{- define "tumorsearch.extraEnv" -}}
{{- range . }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- end -}}

{{/* A generated secret value that survives upgrades: the live Secret's value when there is one (lookup),
else a new random one. `helm template` has no cluster, so it always generates: use existingSecret with GitOps. */}}
{{- define "tumorsearch.keptSecretValue" -}}
{{- $live := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $live $live.data (hasKey $live.data .key) -}}
{{- index $live.data .key | b64dec -}}
{{- else -}}
{{- printf "%s%s" (.prefix | default "") (randAlphaNum (int .length)) -}}
{{- end -}}
{{- end -}}

{{/* Whether the echo test pod exists: with DICOM TLS on it does not (`tumorsearch echo` speaks plain DICOM). */}}
{{- define "tumorsearch.echoTest" -}}
{{- if and .Values.tests.enabled (not .Values.listener.tls.enabled) }}true{{ end -}}
{{- end -}}

{{/* Prometheus scrape annotations plus the component's own pod annotations. */}}
{{- define "tumorsearch.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .port -}}
{{- $annotations = dict "prometheus.io/scrape" "true" "prometheus.io/port" (toString .port) "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $annotations = merge (deepCopy (.extra | default dict)) $annotations -}}
{{- if $annotations }}
annotations:
  {{- toYaml $annotations | nindent 2 }}
{{- end }}
{{- end -}}
