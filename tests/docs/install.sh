#!/usr/bin/env bash
# install.sh - install the pinned docs tooling (tests/docs/package-lock.json)
# into tests/docs/node_modules when missing or stale. Quiet on success.
# Used by tests/e2e/test_docs_*.sh; needs node and npm (scripts/deps.sh).
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "install.sh: node and npm are needed (scripts/deps.sh installs them)" >&2; exit 1; }
stamp=$dir/node_modules/.pc-lock.sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# Two test runs (plain and sanitizer builds) may start at once: one installs,
# the other waits for it.
exec 9>"$dir/.install.lock"
flock -w 300 9 || { echo "install.sh: timed out waiting for another install" >&2; exit 1; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
log=$(mktemp)
if ! (cd "$dir" && timeout 280 npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1); then
  cat "$log" >&2; rm -f "$log"
  echo "install.sh: npm ci failed" >&2
  exit 1
fi
rm -f "$log"
echo "$want" >"$stamp"
