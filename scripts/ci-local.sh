#!/usr/bin/env bash
# Runs .ci/run as CI does: on a clean clone of HEAD with ../shared beside it, CI=true.
# Usage: scripts/ci-local.sh [REV]   (the clone is left in a temp dir on failure, for a look)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:-HEAD}"
work="$(mktemp -d -t cah-ci-XXXXXX)"
mkdir -p "$work/work"
git clone -q "$repo" "$work/work/main"
git -C "$work/work/main" checkout -q "$rev"
if [ -d "$repo/../shared" ]; then ln -s "$(cd "$repo/../shared" && pwd)" "$work/work/shared"; fi
echo "ci-local: $(git -C "$work/work/main" log --oneline -1) in $work/work/main" >&2
if (cd "$work/work/main" && CI=true bash .ci/run); then
  rm -rf "$work"
  echo "ci-local: passed" >&2
else
  code=$?
  echo "ci-local: FAILED (exit $code); the clone is in $work/work/main" >&2
  exit "$code"
fi
