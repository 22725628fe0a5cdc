#!/usr/bin/env bash
# End-to-end run on a real cluster (kind): builds the image, installs the chart, Redis, a demo app
# behind the sidecar and a SessionPolicy, then runs the opt-in pytest module tests/e2e, which
# waits for the policy to be Ready, checks the workload's ConfigMap and the sidecar, triggers a
# purge Job and checks status.lastPurge.
#
# Needs docker and kind; without them it says so and exits 0 (skipped), like the pytest module.
# Settings (environment):
#   CURFEW_E2E_CLUSTER  kind cluster name (default curfew-e2e; reused when it exists)
#   CURFEW_E2E_IMAGE    image tag to build and load (default curfew:e2e)
#   CURFEW_E2E_KEEP=1   keep the cluster afterwards (default: delete it if this script made it)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

cluster="${CURFEW_E2E_CLUSTER:-curfew-e2e}"
image="${CURFEW_E2E_IMAGE:-curfew:e2e}"
keep="${CURFEW_E2E_KEEP:-0}"
release_ns=curfew-system
app_ns=shop

for tool in docker kind; do
  if ! command -v "$tool" >/dev/null; then
    echo "e2e: SKIPPED: $tool is not installed (see docs/install.md)" >&2
    exit 0
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "e2e: SKIPPED: the docker daemon is not reachable" >&2
  exit 0
fi

bash scripts/fetch-tools.sh .tools/bin
export PATH="$root/.tools/bin:$PATH"
step() { printf '\n== %s\n' "$*"; }

work="$(mktemp -d)"
export KUBECONFIG="$work/kubeconfig"
created=0
cleanup() {
  rm -rf "$work"
  if [ "$created" = 1 ] && [ "$keep" != 1 ]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

step "kind cluster $cluster"
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
  created=1
fi
kind export kubeconfig --name "$cluster" --kubeconfig "$KUBECONFIG"

step "image $image"
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"
repository="${image%:*}"
tag="${image##*:}"

step "helm install curfew"
helm upgrade --install curfew charts/curfew \
  --namespace "$release_ns" --create-namespace \
  --set image.repository="$repository" --set image.tag="$tag" --set image.pullPolicy=Never \
  --set injection.enabled=true \
  --wait --timeout 180s

step "Redis and its Secret in namespace $app_ns"
kubectl apply -f tests/e2e/manifests/redis.yaml
kubectl -n "$app_ns" rollout status deployment/redis --timeout=120s
session_key="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
kubectl -n "$app_ns" create secret generic sessions-redis \
  --from-literal=url="redis://redis.$app_ns.svc:6379/0" \
  --from-literal=session-key="$session_key" \
  --dry-run=client -o yaml | kubectl apply -f -

step "SessionPolicy and the demo app behind the sidecar"
# The policy first: the sidecar mounts the ConfigMap the operator writes for the app.
kubectl apply -f tests/e2e/manifests/policy.yaml
cp -r tests/fixtures/charts/demo-app "$work/demo-app"
sed -i "s#file://.*#file://$root/charts/curfew-sidecar#" "$work/demo-app/Chart.yaml"
helm dependency build "$work/demo-app"
helm upgrade --install web "$work/demo-app" --namespace "$app_ns" \
  --set image="$image" --wait --timeout 180s

step "pytest tests/e2e"
CURFEW_E2E=1 .venv/bin/pytest tests/e2e -m e2e -v -p no:cacheprovider
