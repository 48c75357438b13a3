#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use is reachable; start the local cluster if it is down.
# With TEST_DATABASE_URL pointing elsewhere, only check (and fail clearly) - never start anything.
set -euo pipefail

url="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5432

reachable() { pg_isready -q -h "$host" -p "$port" 2>/dev/null || (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if reachable; then exit 0; fi
if [ -n "${TEST_DATABASE_URL:-}" ] && [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
  echo "PostgreSQL at $host:$port is not reachable (TEST_DATABASE_URL)" >&2; exit 1
fi
echo "PostgreSQL is down on $host:$port; starting the local cluster" >&2
if ls /etc/postgresql >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
else
  echo "no local PostgreSQL cluster found: install PostgreSQL or set TEST_DATABASE_URL" >&2; exit 1
fi
for _ in $(seq 1 30); do reachable && exit 0; sleep 1; done
echo "PostgreSQL did not come up on $host:$port" >&2; exit 1
