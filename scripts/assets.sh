#!/usr/bin/env bash
# Front-end libraries the maps load (Leaflet, jQuery, Bootstrap, Font Awesome, MapLibre, terra-draw for
# drawing on the report page, ...), installed
# from the npm registry at set-up with the exact versions of package-lock.json into node_modules/.
# The app serves them under /vendor/ (api/routers/assets.py), so maps render with no internet.
# Installs nodejs/npm from the OS packages first when npm is missing.
set -euo pipefail
say() { printf '\033[1;34m[assets]\033[0m %s\n' "$*"; }
cd "$(dirname "$0")/.."
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 127; fi; }
  say "installing nodejs and npm"
  as_root apt-get update -q >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/tmp/renewal-apt-npm.log 2>&1 \
    || { echo "could not install npm: run sudo apt-get install nodejs npm" >&2; exit 1; }
fi
say "npm ci (map libraries into node_modules/)"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
