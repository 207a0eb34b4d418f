#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 (starting or installing it) and that the
# database named in DATABASE_URL exists.
set -euo pipefail
url="${DATABASE_URL:?set DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME}"
db="${url##*/}"; db="${db%%\?*}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not installed: installing it with apt (needs root)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    ver=$(ls /etc/postgresql | head -1)
    # Local trust, as on a developer laptop: the tests connect as postgres without a password.
    sed -i 's/^\(host\|local\)\(.*\)\(scram-sha-256\|md5\|peer\)$/\1\2trust/' "/etc/postgresql/$ver/main/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "create database \"$db\"" >/dev/null
  echo "Created database $db"
fi
