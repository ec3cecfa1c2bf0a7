#!/bin/sh
# nginx as a scenario's service: `nginx.sh PORT [WORKERS]` serves, on 127.0.0.1:PORT,
# /gzip: a 256 KiB text file compressed at level 9 on every request (no Lua: nginx's own
# gzip filter is the CPU work), and /: a small static page. Runs in the foreground
# (daemon off) from a temporary prefix that goes when it ends.
set -eu
port=$1
workers=${2:-2}
command -v nginx >/dev/null || { echo "nginx.sh: nginx is not installed (apt-get install nginx)" >&2; exit 127; }
d=$(mktemp -d "${TMPDIR:-/tmp}/tb-nginx-XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
# nginx's workers run as an unprivileged user when started by root: they read html/.
chmod 755 "$d"
mkdir -p "$d/html" "$d/logs"
echo ok > "$d/html/index.html"
# 256 KiB of text that compresses like a web page (repeating, but not trivially).
awk 'BEGIN { for (i = 0; i < 4096; i++) printf "line %06d: the quick brown fox %d jumps over %x\n", i, i * 7919 % 10007, i * 31337 }' \
    | head -c 262144 > "$d/html/gzip"
cat > "$d/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 1000000;
    default_type text/plain;
    server {
        listen 127.0.0.1:$port;
        root $d/html;
        location = /gzip {
            gzip on;
            gzip_comp_level 9;
            gzip_min_length 0;
            gzip_types text/plain;
        }
    }
}
CONF
nginx -p "$d" -c "$d/nginx.conf" &
pid=$!
wait "$pid"
