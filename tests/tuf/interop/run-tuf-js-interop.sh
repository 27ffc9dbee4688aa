#!/bin/bash
# Checks that tuf-js (a standard TUF client) verifies repositories made by ota-publish: all keys
# Ed25519; then, after rotations, roles of ECDSA P-256, RSA-PSS and Ed25519 keys (root 6, each
# root key signing a successor of another type); a repository of the default ECDSA keys; one
# without consistent snapshots. Each one's target is found and downloaded by tuf-js and compared.
# Not part of CI (it needs node and tuf-js from npm): run by hand.
#
# Usage: tests/tuf/interop/run-tuf-js-interop.sh [BUILD_DIR]   (default: build/dev)
# Installs tuf-js into this folder's node_modules (npm install) when it is not there yet.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../../build/dev}" && pwd)
publish=$build/bin/ota-publish
[ -x "$publish" ] || { echo "no $publish: build ota-publish first" >&2; exit 1; }
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
[ -d "$here/node_modules/tuf-js" ] || (cd "$here" && npm install --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 300000 /dev/urandom >"$work/image.img"
"$publish" bundle --image "$work/image.img" --out "$work/rootfs.bundle" >/dev/null

failed=0
# check NAME INIT_ARGS [ROTATION...]: a repository with one target, rotated as listed, verified.
check() {
    local name=$1 init=$2
    shift 2
    local repo=$work/$name
    # shellcheck disable=SC2086
    "$publish" init --repo "$repo" $init >/dev/null
    "$publish" add --repo "$repo" --bundle "$work/rootfs.bundle" --hardware-id demo-ecu \
        --version 2 >/dev/null
    for rotation in "$@"; do
        # shellcheck disable=SC2086
        "$publish" rotate --repo "$repo" $rotation >/dev/null
    done
    echo "=== $name: ota-publish init $init${*:+, rotate: $*}"
    if node "$here/verify-with-tuf-js.mjs" "$repo" "$repo/metadata/1.root.json" "$work/client-$name" \
        demo-ecu/rootfs-2.full.bundle; then
        cmp -s "$work/rootfs.bundle" "$work/client-$name/targets/demo-ecu%2Frootfs-2.full.bundle" ||
            { echo "downloaded bundle differs" >&2; failed=1; }
    else
        failed=1
    fi
}
check ed25519 "--key-type ed25519"
check mixed "--key-type ed25519" "--role timestamp --key-type ecdsa" \
    "--role snapshot --key-type rsa" "--role root --key-type ecdsa" \
    "--role root --key-type rsa" "--role root --key-type ed25519"
check ecdsa ""
check plain-names "--key-type ed25519 --no-consistent-snapshot"
if [ $failed = 0 ]; then echo "tuf-js verified every ota-publish repository"; else exit 1; fi
