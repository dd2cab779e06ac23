#!/usr/bin/env bash
# Create .venv, installing the OS venv module first on a bare Debian/Ubuntu Python.
set -euo pipefail
PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then exit 0; fi
if ! "$PY" -m venv .venv 2>/dev/null; then
  rm -rf .venv
  pkg="python3-venv"
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  echo "[venv] the venv module is missing; installing $pkg python$ver-venv"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q "$pkg" "python$ver-venv" || { apt-get update -q && apt-get install -y -q "$pkg" "python$ver-venv"; }
  else sudo apt-get install -y -q "$pkg" "python$ver-venv"; fi
  "$PY" -m venv .venv
fi
