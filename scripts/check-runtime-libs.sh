#!/usr/bin/env bash
# Checks that the runtime image's base provides every shared library the
# release binary links: `ldd BINARY` against the libraries of the
# Dockerfile's final FROM. A new dependency that links, say, libssl or
# libgomp fails here instead of at the first start of a pod.
#
#   scripts/check-runtime-libs.sh "$CARGO_TARGET_DIR/release/nasperf" [Dockerfile]
set -euo pipefail
binary="${1:?usage: $0 BINARY [Dockerfile]}"
dockerfile="${2:-$(dirname "$0")/../Dockerfile}"

base="$(awk 'toupper($1) == "FROM" { image = $2 } END { print image }' "$dockerfile")"
case "$base" in
    gcr.io/distroless/cc-debian12*)
        # glibc (libc, libm, the loader), libgcc_s and libstdc++:
        # the distroless "cc" image.
        provided="linux-vdso.so.1 ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libstdc++.so.6 libdl.so.2 libpthread.so.0 librt.so.1"
        ;;
    gcr.io/distroless/static-debian12*)
        provided=""
        ;;
    *)
        echo "runtime base $base: no list of what it provides; add one to $0" >&2
        exit 1
        ;;
esac

if ! ldd "$binary" >/dev/null 2>&1; then
    echo "$binary: not a dynamic executable ldd can read" >&2
    exit 1
fi
missing=()
while read -r lib; do
    [[ -z "$lib" ]] && continue
    if [[ " $provided " != *" $lib "* ]]; then
        missing+=("$lib")
    fi
done < <(ldd "$binary" | awk '{ n = $1; sub(".*/", "", n); print n }')

echo "runtime base: $base"
ldd "$binary" | sed 's/^/  /'
if ((${#missing[@]})); then
    echo "$binary links ${missing[*]}, which $base does not provide" >&2
    exit 1
fi
echo "every library the binary links is in the runtime base"
