# Sourced by .ci/run and scripts/quickstart.sh: installs what the build needs
# when it is missing and exports the build environment. Safe to source twice.
#
# - protoc (Debian's protobuf-compiler) for the gRPC code;
# - ccache (Debian's), so LightGBM's C++ is compiled once per cache;
# - libclang (Debian's libclang-dev) and cmake >= 3.28 (Debian's is older,
#   so from PyPI) for lightgbm3, which compiles LightGBM's C++ (~8 minutes
#   on 2 cores, once: CARGO_TARGET_DIR lives outside the work tree).

nasperf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nasperf-target}"
export NASPERF_BENCHDATA="${NASPERF_BENCHDATA:-$(cd "$nasperf_root/.." && pwd)/shared/benchdata}"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing_debs=()
command -v protoc >/dev/null 2>&1 || missing_debs+=(protobuf-compiler)
command -v ccache >/dev/null 2>&1 || missing_debs+=(ccache)
# The Python TLS tests make their certificates with openssl; the store
# tests drop databases with psql.
command -v openssl >/dev/null 2>&1 || missing_debs+=(openssl)
command -v psql >/dev/null 2>&1 || missing_debs+=(postgresql-client)
# `nasperf eval` draws its figures' text with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing_debs+=(fonts-dejavu-core)
# libclang itself, not libclang-cpp (which other packages bring and bindgen
# cannot use).
compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib/*/libclang-[0-9]*.so*" >/dev/null \
    || missing_debs+=(libclang-dev)
if [ ${#missing_debs[@]} -gt 0 ]; then
    echo "installing ${missing_debs[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_debs[@]}" >/dev/null
fi

cmake_is_new_enough() {
    local v
    v="$("$1" --version 2>/dev/null | head -n1 | awk '{print $3}')" || return 1
    [ -n "$v" ] && [ "$(printf '%s\n%s\n' 3.28 "$v" | sort -V | head -n1)" = 3.28 ]
}
if [ -z "${CMAKE:-}" ] || ! cmake_is_new_enough "$CMAKE"; then
    if command -v cmake >/dev/null 2>&1 && cmake_is_new_enough "$(command -v cmake)"; then
        CMAKE="$(command -v cmake)"
    else
        pip_cmake() { python3 -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))' 2>/dev/null; }
        if ! cmake_is_new_enough "$(pip_cmake)"; then
            echo "installing cmake>=3.28 from PyPI" >&2
            python3 -m pip install -q 'cmake>=3.28' 2>&1 | grep -v -i "warning" >&2 || true
        fi
        CMAKE="$(pip_cmake)"
    fi
    export CMAKE
fi
cmake_is_new_enough "$CMAKE" || { echo "no cmake >= 3.28 available" >&2; return 1 2>/dev/null || exit 1; }

# `cargo clippy` and `cargo test` run lightgbm3-sys's build script as two
# different units (check and build mode hash differently), each compiling
# LightGBM into its own OUT_DIR. ccache makes the second one cache hits:
# paths under the target dir are rewritten relative to the compiler's working
# directory, which has the same layout in every OUT_DIR.
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/nasperf-ccache}"
export CCACHE_BASEDIR="$CARGO_TARGET_DIR"
export CCACHE_NOHASHDIR=true
export CMAKE_C_COMPILER_LAUNCHER=ccache
export CMAKE_CXX_COMPILER_LAUNCHER=ccache

for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component" >&2
done
