{{- define "perf-exporter.pod" -}}
metadata:
  labels: {app.kubernetes.io/name: perf-exporter, app.kubernetes.io/instance: {{ .Release.Name }}}
  annotations:
    checksum/config: {{ toYaml .Values.config | sha256sum }}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534}
  containers:
    - name: perf-exporter
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "--config.file", "/etc/perf-exporter/config.yaml", "--log.format", "{{ .Values.logFormat }}",
             "--probe-workers", "{{ .Values.probeWorkers }}"{{ if gt (int .Values.shards) 1 }},
             "--shard", "$(POD_NAME)", "--total-shards", "{{ .Values.shards }}"{{ end }}]
      ports:
        - {name: metrics, containerPort: 9469}
      env:
        {{- if gt (int .Values.shards) 1 }}
        - name: POD_NAME  # <release>-perf-exporter-<ordinal>: --shard takes the ordinal from it
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        {{- end }}
        {{- range $name, $value := .Values.env }}
        - {name: {{ $name }}, value: {{ $value | quote }}}
        {{- end }}
      {{- if .Values.secretEnvFrom }}
      envFrom:
        - secretRef: {name: {{ .Values.secretEnvFrom }}}
      {{- end }}
      readinessProbe:
        httpGet: {path: /-/ready, port: metrics}
      livenessProbe:
        httpGet: {path: /-/healthy, port: metrics}
      resources:
{{ toYaml .Values.resources | indent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/perf-exporter}
  volumes:
    - name: config
      configMap: {name: {{ .Release.Name }}-perf-exporter}
{{- end -}}
