#!/usr/bin/env bash
# Make sure a Redis answers on REDIS_URL's host and port: start one, installing it if absent.
set -euo pipefail
url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=6379
answers() { python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG"); s.close()
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
if answers; then echo "Redis answers on $host:$port"; exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "Redis is not installed: installing it with apt (needs root)"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
fi
mkdir -p /tmp/dnflow-redis
redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
  --dir /tmp/dnflow-redis --logfile /tmp/dnflow-redis/redis.log
for _ in $(seq 50); do answers && { echo "Started Redis on $host:$port"; exit 0; }; sleep 0.1; done
echo "Redis did not start on $host:$port; see /tmp/dnflow-redis/redis.log" >&2; exit 1
