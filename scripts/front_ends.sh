#!/usr/bin/env bash
# Several Streamlit front ends behind HAProxy, on this machine: ./scripts/front_ends.sh [PORT] [COUNT]
#
# HAProxy listens on PORT (default 8501, on ADDRESS, default 0.0.0.0); COUNT front ends (default 2)
# listen on 127.0.0.1:PORT+1 … PORT+COUNT. Stickiness is by cookie (SERVERID), never by client
# address: a whole lecture hall shares one address behind its router. When a front end dies its
# users are sent to another (redispatch) and the URL rebuilds their view; the front ends share the
# cache folder (converted models, short links of long texts) and one cookie secret (so a form's
# XSRF token from one is good on another). LLM_EXPLAINER_BACKEND and LLM_EXPLAINER_MODELS, when
# set, reach every front end. Ctrl-C (or TERM) stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-8501}"
COUNT="${2:-2}"
ADDRESS="${ADDRESS:-0.0.0.0}"
command -v haproxy >/dev/null || scripts/ensure_haproxy.sh
[ -x .venv/bin/python ] || scripts/setup.sh
RUN_DIR="${TMPDIR:-/tmp}/llm-explainer-front-ends-$PORT"
mkdir -p "$RUN_DIR"
export STREAMLIT_SERVER_COOKIE_SECRET="$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(32))')"
PIDS=()
stop() { trap - EXIT INT TERM; for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait || true; }
trap stop EXIT INT TERM

SERVERS=""
for i in $(seq 1 "$COUNT"); do
  p=$((PORT + i))
  .venv/bin/python -m explainer.ui.tools.serve --server.port "$p" --server.address 127.0.0.1 \
    --server.headless true --browser.gatherUsageStats false \
    > "$RUN_DIR/front-end-$i.log" 2>&1 &
  PIDS+=("$!")
  echo "front end $i: http://127.0.0.1:$p (pid $!, log $RUN_DIR/front-end-$i.log)"
  SERVERS+="    server fe$i 127.0.0.1:$p check cookie fe$i inter 1s fall 2 rise 2"$'\n'
done

cat > "$RUN_DIR/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option redispatch
    retries 3
frontend explainer
    bind $ADDRESS:$PORT
    default_backend front_ends
backend front_ends
    balance roundrobin
    cookie SERVERID insert indirect nocache
    http-response set-header X-Front-End %s
    option httpchk GET /_stcore/health
    http-check expect string ok
$SERVERS
EOF
haproxy -c -q -f "$RUN_DIR/haproxy.cfg"
for i in $(seq 1 "$COUNT"); do
  for _ in $(seq 240); do curl -fsS "http://127.0.0.1:$((PORT + i))/_stcore/health" >/dev/null 2>&1 && break; sleep 0.5; done
done
haproxy -db -f "$RUN_DIR/haproxy.cfg" > "$RUN_DIR/haproxy.log" 2>&1 &
PIDS+=("$!")
HERE="$ADDRESS"; [ "$HERE" = "0.0.0.0" ] && HERE=127.0.0.1
for _ in $(seq 60); do curl -fsS "http://$HERE:$PORT/_stcore/health" >/dev/null 2>&1 && break; sleep 0.5; done
echo "HAProxy: http://$ADDRESS:$PORT (pid $!) -> $COUNT front ends; Ctrl-C stops them all"
while kill -0 "${PIDS[-1]}" 2>/dev/null; do sleep 1 & wait $!; done     # until HAProxy ends (or a signal)
