#!/usr/bin/env bash
# OS packages the running service needs beyond PostgreSQL/PostGIS (scripts/provision-db.sh):
# LibreOffice Writer (headless) turns the Word reports (/reports/quarterly?format=pdf,
# `renewal report ... -o x.pdf`) into PDF, and a CJK font draws Chinese in maps and PDFs.
# Installed from the OS packages when missing (as root or through sudo); otherwise it says
# what to install and carries on: Word reports work without them, PDF answers 503.
# With DATABASE_URL set (a managed deployment) nothing is installed.
set -euo pipefail
say() { printf '\033[1;34m[run-deps]\033[0m %s\n' "$*"; }
if [ -n "${DATABASE_URL:-}" ]; then exit 0; fi
missing=()
{ command -v soffice >/dev/null 2>&1 && { dpkg -s libreoffice-writer-nogui >/dev/null 2>&1 \
    || [ -e /usr/lib/libreoffice/program/swriter ]; }; } || missing+=(libreoffice-writer-nogui)
fc-list 2>/dev/null | grep -i "noto.*cjk" >/dev/null || missing+=(fonts-noto-cjk)  # no -q: SIGPIPE + pipefail
[ ${#missing[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 127; fi; }
command -v apt-get >/dev/null 2>&1 || { say "not a Debian/Ubuntu system: install ${missing[*]} for PDF reports"; exit 0; }
say "installing ${missing[*]} (PDF reports)"
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/renewal-apt-run.log 2>&1; then
  as_root apt-get update -q >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/renewal-apt-run.log 2>&1 \
    || say "could not install ${missing[*]}: PDF reports will answer 503 (sudo apt-get install ${missing[*]})"
fi
