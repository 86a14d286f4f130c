#!/usr/bin/env bash
# Builds the braid container image (default tag braid:local) from this source tree, without any
# registry: `braid` is compiled on the host as a statically linked glibc binary
# (x86_64-unknown-linux-gnu, -C target-feature=+crt-static) and copied into a FROM-scratch image
# together with a minimal root filesystem.
#
# Usage: deploy/build-image.sh [--no-build] [--tag IMAGE]
#   --no-build   reuse target/x86_64-unknown-linux-gnu/<profile>/braid as it is (fails if missing)
#   --tag IMAGE  image name (default: $BRAID_IMAGE or braid:local)
# Environment:
#   BRAID_IMAGE           image name (default braid:local)
#   BRAID_IMAGE_PROFILE   cargo profile (default release)
#   CARGO                 cargo command (default cargo)
#
# The static build goes to target/x86_64-unknown-linux-gnu/, apart from the ordinary host
# builds, so it neither invalidates nor is invalidated by them; a second run only relinks what
# changed.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${BRAID_IMAGE:-braid:local}"
profile="${BRAID_IMAGE_PROFILE:-release}"
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --tag) image="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

target=x86_64-unknown-linux-gnu
profile_dir="$profile"
[ "$profile" = dev ] && profile_dir=debug
bin="target/$target/$profile_dir/braid"

if [ "$build" = 1 ]; then
  if [ -z "${CARGO:-}" ] && ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  # --target keeps RUSTFLAGS away from build scripts and proc macros (which cannot be static).
  RUSTFLAGS="-C target-feature=+crt-static" "${CARGO:-cargo}" build \
    --profile "$profile" --target "$target" -p braid --bin braid
fi
[ -x "$bin" ] || { echo "build-image.sh: $bin is missing (run without --no-build)" >&2; exit 1; }

# A binary with a program interpreter or NEEDED entries would not start in a scratch image.
if readelf -l "$bin" | grep -q 'INTERP' || readelf -d "$bin" | grep -q 'NEEDED'; then
  echo "build-image.sh: $bin is not statically linked:" >&2
  readelf -d "$bin" | grep NEEDED >&2 || true
  exit 1
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/braid-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc/braid" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\nbraid:x:10001:10001:braid:/var/lib/braid:/sbin/nologin\n' \
  > "$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nbraid:x:10001:\n' > "$ctx/rootfs/etc/group"
# Names resolve through /etc/hosts, then DNS (the container runtime provides both files).
printf 'hosts: files dns\n' > "$ctx/rootfs/etc/nsswitch.conf"
# Debug info stays in the host build; the image gets symbols only (smaller, still symbolised).
objcopy --strip-debug "$bin" "$ctx/braid"
cp deploy/Dockerfile "$ctx/Dockerfile"

# The classic builder is enough (FROM scratch, COPY only) and is what a bare engine has.
DOCKER_BUILDKIT=0 docker build --quiet -t "$image" \
  --label "org.opencontainers.image.revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "build-image.sh: built $image ($((size / 1024 / 1024)) MiB) from $bin"
