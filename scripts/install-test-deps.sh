#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (run as root):
# Debian packages for the real clients and the baseline registry, and the official OCI
# conformance suite built with Go from the module proxy. Idempotent: skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="$PWD/.tools"
mkdir -p "$TOOLS/bin"

DEBIAN_PACKAGES=(skopeo podman netavark buildah containerd docker.io docker-registry wrk jq curl uidmap)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: installing Debian packages needs root (or install them yourself): ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the machine's own toolchain, else Debian's, which fetches the toolchain the module needs.
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
    echo "installing Debian golang-go"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

build_go_tool() { # output-name module-dir package
    local out="$TOOLS/bin/$1" dir="$2" pkg="$3"
    if [ ! -x "$out" ] || [ "$dir/go.mod" -nt "$out" ] || [ "$dir/go.sum" -nt "$out" ]; then
        echo "building $1 from $pkg"
        (cd "$dir" && go build -o "$out" "$pkg")
    fi
}
build_go_tool conformance-main tests/conformance/suite-main \
    github.com/opencontainers/distribution-spec/conformance

echo "test dependencies are ready"
