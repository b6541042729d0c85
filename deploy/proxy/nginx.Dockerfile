# The HTTPS reverse proxy in front of the compose deployment's api: Debian bookworm's nginx,
# built locally as the swarm's HAProxy is. Its configuration is a template (nginx.conf.template)
# filled in at start from the environment that docker-compose.yml gives both the proxy and the
# api, so the proxy's limits and time-outs are the service's.
#   docker build -f deploy/proxy/nginx.Dockerfile -t fashion-serve-proxy deploy/proxy
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# gettext-base: envsubst, which fills the template in.
RUN apt-get update \
    && apt-get install -y --no-install-recommends "nginx=1.22.*" "gettext-base=0.21-*" \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10002 proxy-user \
    && useradd --system --uid 10002 --gid proxy-user --no-create-home --home-dir /nonexistent proxy-user
COPY nginx.conf.template entrypoint.sh /etc/fashion-proxy/
# Unprivileged ports inside the container; compose publishes them where the operator says.
EXPOSE 8080 8443
USER 10002:10002
ENTRYPOINT ["sh", "/etc/fashion-proxy/entrypoint.sh"]
