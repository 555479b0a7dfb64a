{{- define "perf-exporter.pod" -}}
metadata:
  labels: {app.kubernetes.io/name: perf-exporter, app.kubernetes.io/instance: {{ .Release.Name }}}
  annotations:
    checksum/config: {{ toYaml .Values.config | sha256sum }}
    checksum/web-config: {{ toYaml .Values.webConfig | sha256sum }}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534}
  containers:
    - name: perf-exporter
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "--config.file", "/etc/perf-exporter/config.yaml", "--log.format", "{{ .Values.logFormat }}",
             "--probe-workers", "{{ .Values.probeWorkers }}"{{ if gt (int .Values.shards) 1 }},
             "--shard", "$(POD_NAME)", "--total-shards", "{{ .Values.shards }}"{{ end }}{{ if .Values.webConfig }},
             "--web.config.file", "/etc/perf-exporter-web/web.yml"{{ end }}]
      ports:
        - {name: metrics, containerPort: 9469}
      env:
        {{- if gt (int .Values.shards) 1 }}
        - name: POD_NAME  # <release>-perf-exporter-<ordinal>: --shard takes the ordinal from it
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        {{- end }}
        {{- if .Values.healthcheckAuthSecret }}
        - name: PERF_EXPORTER_HEALTHCHECK_AUTH  # user:password, for the probes behind basic auth
          valueFrom: {secretKeyRef: {name: {{ .Values.healthcheckAuthSecret }}, key: auth}}
        {{- end }}
        {{- range $name, $value := .Values.env }}
        - {name: {{ $name }}, value: {{ $value | quote }}}
        {{- end }}
      {{- if .Values.secretEnvFrom }}
      envFrom:
        - secretRef: {name: {{ .Values.secretEnvFrom }}}
      {{- end }}
      {{- if .Values.webConfig }}
      # TLS or basic auth on every endpoint: the kubelet's httpGet would get a 401 (or speak HTTP to TLS);
      # perf-exporter healthcheck finds the scheme and logs in with PERF_EXPORTER_HEALTHCHECK_AUTH
      readinessProbe:
        {{- if .Values.healthcheckAuthSecret }}
        exec: {command: ["perf-exporter", "healthcheck", "--path", "/-/ready"]}
        {{- else }}
        exec: {command: ["perf-exporter", "healthcheck"]}
        {{- end }}
        timeoutSeconds: 6
      livenessProbe:
        exec: {command: ["perf-exporter", "healthcheck"]}
        timeoutSeconds: 6
      {{- else }}
      readinessProbe:
        httpGet: {path: /-/ready, port: metrics}
      livenessProbe:
        httpGet: {path: /-/healthy, port: metrics}
      {{- end }}
      resources:
{{ toYaml .Values.resources | indent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/perf-exporter}
        {{- if .Values.webConfig }}
        - {name: web-config, mountPath: /etc/perf-exporter-web}
        {{- end }}
  volumes:
    - name: config
      configMap: {name: {{ .Release.Name }}-perf-exporter}
    {{- if .Values.webConfig }}
    - name: web-config  # web.yml, and the certificates and keys of webConfigFilesSecret beside it
      projected:
        sources:
          - secret: {name: {{ .Release.Name }}-perf-exporter-web}
          {{- if .Values.webConfigFilesSecret }}
          - secret: {name: {{ .Values.webConfigFilesSecret }}}
          {{- end }}
    {{- end }}
{{- end -}}
