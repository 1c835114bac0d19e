#!/usr/bin/env bash
# deps.sh - install every Debian package the build, the tests and run.sh
# need. Idempotent and quiet when everything is present; uses sudo when not
# root.
set -euo pipefail

PKGS=(
  gcc make cmake pkg-config
  libmicrohttpd-dev libssl-dev libsqlite3-dev libev-dev libcjson-dev libcmocka-dev
  openssl curl ca-certificates python3 jq sqlite3 procps iproute2 psmisc prometheus
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node (for the OpenAPI validator) may come from another packaging that
# bundles npm; only ask Debian for it when the command is missing.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
