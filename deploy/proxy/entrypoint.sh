#!/bin/sh
# Fill the template in from the environment (only the names it uses), check it, run nginx.
set -eu
: "${FASHION_MAX_UPLOAD_BYTES:?}" "${FASHION_TIMEOUT:?}" "${FASHION_READ_TIMEOUT:?}"
: "${FASHION_SEND_TIMEOUT:?}" "${FASHION_MAX_HEADER_BYTES:?}" "${FASHION_MAX_FIELD_BYTES:?}"
: "${FASHION_KEEPALIVE:?}" "${FASHION_HTTPS_PORT:?}"
# A request's head in nginx: buffers of one line's size at most, as many as make the whole.
FASHION_HEADER_BUFFERS=$((FASHION_MAX_HEADER_BYTES / FASHION_MAX_FIELD_BYTES))
export FASHION_HEADER_BUFFERS
envsubst '${FASHION_MAX_UPLOAD_BYTES} ${FASHION_TIMEOUT} ${FASHION_READ_TIMEOUT} ${FASHION_SEND_TIMEOUT} ${FASHION_HEADER_BUFFERS} ${FASHION_MAX_FIELD_BYTES} ${FASHION_KEEPALIVE} ${FASHION_HTTPS_PORT}' \
  < /etc/fashion-proxy/nginx.conf.template > /tmp/nginx.conf
nginx -t -q -c /tmp/nginx.conf
exec nginx -c /tmp/nginx.conf -g 'daemon off;'
