#!/bin/sh
# The proxy's start: a self-signed certificate when none is mounted, the upstream lists, the
# body limit from the portal's own limits, then nginx in the foreground.
# `entrypoint.sh render` stops after writing the configuration (the CI test uses that, with
# PORTAL_PROXY_TEMPLATE / PORTAL_PROXY_OUTPUT pointing at its own files).
set -eu

: "${PORTAL_PROXY_TEMPLATE:=/etc/nginx/portal.conf.template}"
: "${PORTAL_PROXY_OUTPUT:=/etc/nginx/conf.d/default.conf}"

: "${PORTAL_SERVER_NAME:=localhost}"
: "${NGINX_HTTP_LISTEN:=8080}"
: "${NGINX_PUBLIC_LISTEN:=8443}"
: "${NGINX_WORKSPACE_LISTEN:=9443}"
: "${NGINX_CERT_DIR:=/etc/nginx/certs}"
: "${NGINX_CLIENT_TIMEOUT:=10}"
: "${PORTAL_MAX_FILE_MB:=200}"
: "${PORTAL_MAX_FILES:=20}"
: "${PORTAL_UPSTREAMS:=portal:8000}"
: "${WORKSPACE_UPSTREAMS:=workspace:8000}"
NGINX_CERT="$NGINX_CERT_DIR/portal.crt"
NGINX_CERT_KEY="$NGINX_CERT_DIR/portal.key"

if [ ! -s "$NGINX_CERT" ] || [ ! -s "$NGINX_CERT_KEY" ]; then
  echo "proxy: no certificate in $NGINX_CERT_DIR; creating a self-signed one for $PORTAL_SERVER_NAME"
  echo "proxy: replace it with a real certificate (portal.crt + portal.key) before going live"
  mkdir -p "$NGINX_CERT_DIR"
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=$PORTAL_SERVER_NAME" -addext "subjectAltName=DNS:$PORTAL_SERVER_NAME" \
    -keyout "$NGINX_CERT_KEY" -out "$NGINX_CERT" 2>/dev/null
  chmod 0644 "$NGINX_CERT"
fi

servers() {
  out=""
  for s in $1; do out="$out server $s max_fails=1 fail_timeout=10s;"; done
  echo "$out"
}
REPORTER_UPSTREAM_SERVERS=$(servers "$PORTAL_UPSTREAMS")
WORKSPACE_UPSTREAM_SERVERS=$(servers "$WORKSPACE_UPSTREAMS")
# the portal's own request limit is MAX_FILE_MB x MAX_FILES + 2 MB; nginx allows 1 MB more
NGINX_BODY_LIMIT="$((PORTAL_MAX_FILE_MB * PORTAL_MAX_FILES + 3))m"

export PORTAL_SERVER_NAME NGINX_HTTP_LISTEN NGINX_PUBLIC_LISTEN NGINX_WORKSPACE_LISTEN \
  NGINX_CERT NGINX_CERT_KEY NGINX_BODY_LIMIT NGINX_CLIENT_TIMEOUT \
  REPORTER_UPSTREAM_SERVERS WORKSPACE_UPSTREAM_SERVERS
envsubst '${PORTAL_SERVER_NAME} ${NGINX_HTTP_LISTEN} ${NGINX_PUBLIC_LISTEN} ${NGINX_WORKSPACE_LISTEN} ${NGINX_CERT} ${NGINX_CERT_KEY} ${NGINX_BODY_LIMIT} ${NGINX_CLIENT_TIMEOUT} ${REPORTER_UPSTREAM_SERVERS} ${WORKSPACE_UPSTREAM_SERVERS}' \
  < "$PORTAL_PROXY_TEMPLATE" > "$PORTAL_PROXY_OUTPUT"
if [ "${1:-}" = render ]; then exit 0; fi
nginx -t -q
exec nginx -g 'daemon off;'
