# A local stand-in for the official haproxy:2.6 image, for machines that cannot pull from a
# registry: Debian bookworm's HAProxy 2.6 laid out as the official image is (the configuration
# at /usr/local/etc/haproxy/haproxy.cfg, master-worker mode in the foreground, a non-root user),
# so stack.yml runs unchanged on either. Build on the local Debian base:
#   docker build -f deploy/swarm/haproxy.Dockerfile \
#     --build-arg BASE_IMAGE=local/python:3.11-slim -t local/haproxy:2.6 deploy/swarm
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# The package's system user, made first with a fixed uid so that USER can name it by number.
RUN groupadd --system --gid 999 haproxy \
    && useradd --system --uid 999 --gid haproxy --home-dir /var/lib/haproxy --no-create-home haproxy \
    && apt-get update \
    && apt-get install -y --no-install-recommends "haproxy=2.6.*" \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/etc/haproxy
USER 999:999
STOPSIGNAL SIGUSR1
ENTRYPOINT ["haproxy", "-W", "-db"]
CMD ["-f", "/usr/local/etc/haproxy/haproxy.cfg"]
