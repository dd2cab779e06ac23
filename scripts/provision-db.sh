#!/usr/bin/env bash
# Make a PostGIS database ready: install PostgreSQL/PostGIS from the OS packages when
# missing, start the server when it is down, create the role, the database and the
# postgis extension. Idempotent. With DATABASE_URL set, only checks that server and
# creates the extension there: no OS packages are installed.
#
# usage: scripts/provision-db.sh [DBNAME]    (default: renewal; "-" = server only)
set -euo pipefail
DB="${1:-renewal}"
say() { printf '\033[1;34m[db]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[db] %s\033[0m\n' "$*" >&2; exit 1; }

# The API's own login: not a superuser, owns nothing; migration 0014 grants it renewal_app's rights
# (and creates it too when the migrating owner may create roles). DATABASE_URL's default uses it.
api_login() {
  local url="$1"
  if [ "$(psql "$url" -qAtc "SELECT 1 FROM pg_roles WHERE rolname = 'renewal_api'" 2>/dev/null)" != "1" ]; then
    say "creating PostgreSQL login renewal_api (no superuser, owns nothing)"
    psql "$url" -v ON_ERROR_STOP=1 -qc \
      "CREATE ROLE renewal_api LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" >/dev/null 2>&1 \
      || say "could not create role renewal_api here; 'renewal db upgrade' creates it when the owner may"
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 127; fi
}

if [ -n "${DATABASE_URL:-}" ]; then
  say "DATABASE_URL is set: using that server, installing no OS packages"
  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtc "SELECT 1" >/dev/null \
    || die "cannot connect to DATABASE_URL ($DATABASE_URL). Is the server running and the database created?"
  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null \
    || die "PostGIS is not available on that server: install the postgis package for its PostgreSQL version, or run CREATE EXTENSION postgis as a superuser."
  api_login "$DATABASE_URL"
  exit 0
fi

apt_install() {
  say "installing OS packages: $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/tmp/renewal-apt.log 2>&1; then
    as_root apt-get update -q >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/tmp/renewal-apt.log 2>&1 \
      || die "could not install $* (need root or sudo). Install them yourself: sudo apt-get install $*  (log: /tmp/renewal-apt.log)"
  fi
}

# 1. PostgreSQL server
server_versions() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | cut -d/ -f5 | sort -V; }
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(server_versions)" ]; then
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and this is not a Debian/Ubuntu system: install PostgreSQL 13+ with PostGIS 3, then set DATABASE_URL."
  apt_install postgresql
fi
# The newest installed server, or the one an existing cluster runs on.
PGV="$(pg_lsclusters -h 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1)"
[ -n "$PGV" ] || PGV="$(server_versions | tail -n 1)"
[ -n "$PGV" ] || die "no PostgreSQL server binaries found under /usr/lib/postgresql after installing postgresql"

# 2. PostGIS for that server version
if [ ! -f "/usr/share/postgresql/$PGV/extension/postgis.control" ]; then
  apt_install "postgresql-$PGV-postgis-3" "postgresql-$PGV-postgis-3-scripts"
fi

# 3. Server running (a fresh install, a stopped service, or no cluster yet)
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  say "creating cluster $PGV/main"
  as_root pg_createcluster "$PGV" main >/dev/null || die "could not create a cluster: sudo pg_createcluster $PGV main"
fi
CLUSTER_LINE="$(pg_lsclusters -h | sort -V | tail -n 1)"
CL_VER="$(echo "$CLUSTER_LINE" | awk '{print $1}')"
CL_NAME="$(echo "$CLUSTER_LINE" | awk '{print $2}')"
if ! echo "$CLUSTER_LINE" | grep -q online; then
  say "starting PostgreSQL $CL_VER/$CL_NAME"
  as_root pg_ctlcluster --skip-systemctl-redirect "$CL_VER" "$CL_NAME" start 2>/dev/null \
    || as_root pg_ctlcluster "$CL_VER" "$CL_NAME" start \
    || die "could not start PostgreSQL $CL_VER/$CL_NAME: sudo pg_ctlcluster $CL_VER $CL_NAME start"
fi
for _ in $(seq 1 30); do pg_isready -q && break; sleep 0.5; done
pg_isready -q || die "PostgreSQL does not accept connections on the local socket"

# 4. A role for the current OS user (peer/trust auth on the local socket)
ME="$(id -un)"
if ! psql -d postgres -qAtc "SELECT 1" >/dev/null 2>&1; then
  say "creating PostgreSQL role $ME"
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- createuser -s "$ME"
  else sudo -u postgres createuser -s "$ME" || die "could not create role $ME: sudo -u postgres createuser -s $ME"; fi
fi

api_login "dbname=postgres"

# 5. The database and PostGIS
[ "$DB" = "-" ] && exit 0
if [ "$(psql -d postgres -qAtc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  say "creating database $DB"
  createdb "$DB"
fi
psql -d "$DB" -v ON_ERROR_STOP=1 -qc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
say "database $DB ready ($(psql -d "$DB" -qAtc 'SELECT postgis_lib_version()' | sed 's/^/PostGIS /'))"
