{{- /*
The Curfew enforcement sidecar, for application charts. Add this chart as a dependency, then in a
pod template:

  containers:
    - name: app                      # your app, listening on 127.0.0.1:3000 for example
      ...
    {{- include "curfew-sidecar.container" (dict "workloadName" "web" "appPort" 3000 "redisSecret" "sessions-redis") | nindent 4 }}
  volumes:
    {{- include "curfew-sidecar.volume" (dict "workloadName" "web") | nindent 4 }}

and point the Service at the sidecar's port (listenPort, 8080 by default) instead of the app's.

Parameters (a dict):
  workloadName          required: name of the Deployment/StatefulSet/DaemonSet the pod belongs to
  workloadKind          Deployment (default), StatefulSet or DaemonSet
  appPort               required (container): the app's port on 127.0.0.1, the sidecar's upstream
  redisSecret           required (container): Secret in the pod's namespace holding the Redis URL;
                        the same Secret as the policy's spec.store.redisSecretRef
  redisSecretKey        key of the Redis URL in redisSecret (default url)
  sessionKeySecret      Secret holding the session-hashing key (default: redisSecret)
  sessionKeySecretKey   its key (default session-key), as the policy's effective sessionKeySecretRef
  appSecret             Secret holding the app's cookie secret(s), as the policy's
                        spec.store.appSecretRef (connect-redis, flask-session; default: none,
                        signatures unread)
  appSecretKey          its key (default cookie-secret)
  image                 the curfew image (default curfew:<appVersion of this chart>)
  imagePullPolicy       default IfNotPresent
  listenPort            port the sidecar serves the app's traffic on (default 8080)
  opsPort               port of the sidecar's /healthz, /readyz and /metrics (default 9469)
  mode                  proxy (default) or authz (Envoy ext_authz / nginx auth_request)
  configMapName         the ConfigMap the operator writes for the workload (default
                        curfew-<kind>-<name>, as `curfew render` prints it)
  resources             the container's resources (default: small requests, memory limit)
*/}}

{{- define "curfew-sidecar.configMapName" -}}
{{- $kind := default "Deployment" .workloadKind }}
{{- if not (has $kind (list "Deployment" "StatefulSet" "DaemonSet")) }}
{{- fail (printf "curfew-sidecar: workloadKind must be Deployment, StatefulSet or DaemonSet, got %q" $kind) }}
{{- end }}
{{- $name := required "curfew-sidecar: workloadName is required" .workloadName }}
{{- $cm := default (printf "curfew-%s-%s" (lower $kind) $name) .configMapName }}
{{- if gt (len $cm) 253 }}
{{- fail (printf "curfew-sidecar: the ConfigMap name of %s %s is shortened with a hash: set configMapName to the name `curfew render` prints" $kind $name) }}
{{- end }}
{{- $cm }}
{{- end }}

{{- define "curfew-sidecar.volume" -}}
- name: curfew-config
  configMap:
    name: {{ include "curfew-sidecar.configMapName" . }}
{{- end }}

{{- define "curfew-sidecar.container" -}}
{{- $appPort := int (required "curfew-sidecar: appPort (the app's port) is required" .appPort) }}
{{- $listenPort := int (default 8080 .listenPort) }}
{{- $opsPort := int (default 9469 .opsPort) }}
{{- if eq $appPort $listenPort }}
{{- fail (printf "curfew-sidecar: listenPort and appPort are both %d: the sidecar and the app need their own ports" $appPort) }}
{{- end }}
{{- if or (eq $opsPort $listenPort) (eq $opsPort $appPort) }}
{{- fail (printf "curfew-sidecar: opsPort %d is already taken by the app or the sidecar's listenPort" $opsPort) }}
{{- end }}
{{- $mode := default "proxy" .mode }}
{{- if not (has $mode (list "proxy" "authz")) }}
{{- fail (printf "curfew-sidecar: mode must be proxy or authz, got %q" $mode) }}
{{- end }}
{{- $redisSecret := required "curfew-sidecar: redisSecret (the Secret holding the Redis URL) is required" .redisSecret }}
{{- $_ := include "curfew-sidecar.configMapName" . -}}
- name: curfew-sidecar
  image: {{ default "curfew:0.1.0" .image }}
  imagePullPolicy: {{ default "IfNotPresent" .imagePullPolicy }}
  args:
    - sidecar
    - --config=/etc/curfew/policy.json
    - --listen=0.0.0.0:{{ $listenPort }}
    - --ops-listen=0.0.0.0:{{ $opsPort }}
    - --mode={{ $mode }}
    {{- if eq $mode "proxy" }}
    - --upstream=http://127.0.0.1:{{ $appPort }}
    {{- end }}
  env:
    - name: REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ $redisSecret }}
          key: {{ default "url" .redisSecretKey }}
    - name: CURFEW_SESSION_KEY
      valueFrom:
        secretKeyRef:
          name: {{ default $redisSecret .sessionKeySecret }}
          key: {{ default "session-key" .sessionKeySecretKey }}
    {{- if .appSecret }}
    - name: CURFEW_APP_SECRET
      valueFrom:
        secretKeyRef:
          name: {{ .appSecret }}
          key: {{ default "cookie-secret" .appSecretKey }}
    {{- end }}
  ports:
    - name: curfew
      containerPort: {{ $listenPort }}
      protocol: TCP
    - name: curfew-ops
      containerPort: {{ $opsPort }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: curfew-ops
    periodSeconds: 10
  readinessProbe:
    httpGet:
      path: /readyz
      port: curfew-ops
    periodSeconds: 5
  resources:
    {{- if .resources }}
    {{- toYaml .resources | nindent 4 }}
    {{- else }}
    requests:
      cpu: 50m
      memory: 64Mi
    limits:
      memory: 128Mi
    {{- end }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: curfew-config
      mountPath: /etc/curfew
      readOnly: true
{{- end }}
