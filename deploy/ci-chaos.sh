#!/usr/bin/env bash
# CI: the short chaos scenario set (a zone kill, a partition and a pause under a checked load)
# against the compose cluster of deploy/compose/compose.yaml, on the image built from this tree.
#
# Fails if Docker is missing (CI=true makes the chaos suite refuse the process fallback), if any
# acknowledged record is lost or reordered, or if the cluster does not recover.
#
# Usage: deploy/ci-chaos.sh            (BRAID_CHAOS_REPORT=FILE also appends the summary to FILE)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "ci-chaos.sh: the Docker engine does not answer; the chaos suite needs it" >&2
  exit 1
fi

started=$(date +%s)
deploy/build-image.sh
built=$(date +%s)
CI=true BRAID_CHAOS_BACKEND=docker \
  cargo test -p braid-tests --test chaos -- --ignored --exact chaos_short --nocapture
echo "ci-chaos.sh: image $((built - started)) s, chaos_short $(($(date +%s) - built)) s"
