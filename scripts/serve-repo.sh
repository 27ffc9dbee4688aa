#!/usr/bin/env bash
# Serves a directory over HTTP on 127.0.0.1 with Debian's nginx from a private configuration
# (no root privileges, no system service). Used by the demo and the test suite.
#   serve-repo.sh start ROOT_DIR PORT RUN_DIR   -> nginx runs in the background (pid in RUN_DIR)
#   serve-repo.sh stop RUN_DIR
set -euo pipefail
cmd=${1:?start|stop}
case "$cmd" in
start)
    root=$(realpath "${2:?ROOT_DIR}")
    port=${3:?PORT}
    run=${4:?RUN_DIR}
    mkdir -p "$run"
    run=$(realpath "$run")
    cat >"$run/nginx.conf" <<CONF
worker_processes 1;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 64; }
http {
    # The combined format plus the connection serial, so tests can count connections.
    log_format combined_conn '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status '
                             '\$body_bytes_sent "\$http_referer" "\$http_user_agent" conn=\$connection';
    access_log $run/access.log combined_conn;
    client_body_temp_path $run/client_body;
    proxy_temp_path $run/proxy;
    fastcgi_temp_path $run/fastcgi;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $root;
        location / { }
    }
}
CONF
    nginx -c "$run/nginx.conf" -p "$run" -e "$run/error.log"
    for _ in $(seq 50); do
        [ -s "$run/nginx.pid" ] && break
        sleep 0.1
    done
    ;;
stop)
    run=${2:?RUN_DIR}
    if [ -s "$run/nginx.pid" ]; then
        kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
        rm -f "$run/nginx.pid"
    fi
    ;;
*)
    echo "usage: $0 start ROOT_DIR PORT RUN_DIR | stop RUN_DIR" >&2
    exit 1
    ;;
esac
