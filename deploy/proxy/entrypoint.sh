#!/bin/sh
# Fill the template in from the environment (only the names it uses), check it, run nginx.
set -eu
: "${FASHION_MAX_UPLOAD_BYTES:?}" "${FASHION_TIMEOUT:?}" "${FASHION_READ_TIMEOUT:?}"
: "${FASHION_MAX_HEADER_BYTES:?}" "${FASHION_KEEPALIVE:?}" "${FASHION_HTTPS_PORT:?}"
# nginx takes at most 4 buffers for a request's head: each a quarter of the service's limit.
FASHION_HEADER_BUFFER=$((FASHION_MAX_HEADER_BYTES / 4))
export FASHION_HEADER_BUFFER
envsubst '${FASHION_MAX_UPLOAD_BYTES} ${FASHION_TIMEOUT} ${FASHION_READ_TIMEOUT} ${FASHION_HEADER_BUFFER} ${FASHION_KEEPALIVE} ${FASHION_HTTPS_PORT}' \
  < /etc/fashion-proxy/nginx.conf.template > /tmp/nginx.conf
nginx -t -q -c /tmp/nginx.conf
exec nginx -c /tmp/nginx.conf -g 'daemon off;'
