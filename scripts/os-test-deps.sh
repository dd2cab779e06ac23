#!/usr/bin/env bash
# OS tools the test suite drives as real clients: GDAL's ogrinfo (OAPIF and MVT drivers),
# Debian's Chromium (browser tests), LibreOffice (ledgers open in an office suite; Writer turns
# Word reports into PDF), poppler-utils (pdftotext reads the PDF back), a
# CJK font for screenshots and QGIS (python3-qgis: the QGIS project and styles), nginx (the tile cache). Installed from the OS packages when missing; with
# DATABASE_URL set nothing is installed (tests needing them then skip, or fail in CI).
set -euo pipefail
say() { printf '\033[1;34m[deps]\033[0m %s\n' "$*"; }
if [ -n "${DATABASE_URL:-}" ]; then say "DATABASE_URL set: not installing OS packages"; exit 0; fi
missing=()
command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-calc-nogui)
# Word reports convert to PDF with LibreOffice Writer; tests read the PDF's text with pdftotext
dpkg -s libreoffice-writer-nogui >/dev/null 2>&1 || [ -e /usr/lib/libreoffice/program/swriter ] \
  || missing+=(libreoffice-writer-nogui)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
fc-list 2>/dev/null | grep -qi "noto.*cjk" || missing+=(fonts-noto-cjk)
# QGIS (Debian's python3-qgis, run offscreen) opens the generated project and loads the styles
/usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || missing+=(python3-qgis qgis-providers)
# nginx (the documented tile cache, docs/nginx/tile-cache.conf, run by tests/api/test_tile_cache.py)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 127; fi; }
say "installing ${missing[*]}"
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/renewal-apt-test.log 2>&1; then
  as_root apt-get update -q >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/renewal-apt-test.log 2>&1 \
    || { echo "could not install ${missing[*]}: run sudo apt-get install ${missing[*]}" >&2; exit 1; }
fi
