#!/usr/bin/env bash
# A Docker engine that answers, with Compose, for the container tests and `make test-docker*`.
# Where one already answers it is used as it is. Otherwise, on Debian as root, Debian's docker.io,
# docker-compose and debootstrap are installed and dockerd is started in the background.
# Exit 0: ready. Exit 3: no engine can run here; the reason is the last line on stderr (the
# container tests skip with it). Any other exit: a step failed, with its output.
set -euo pipefail
unavailable() { echo "no Docker engine: $*" >&2; exit 3; }

if docker info >/dev/null 2>&1 \
    && { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }; then
  echo "docker engine ready: $(docker version --format '{{.Server.Version}}')"
  exit 0
fi
[ "$(id -u)" = 0 ] || unavailable "none answers, and only root can install and start one"
command -v apt-get >/dev/null 2>&1 || unavailable "none answers, and this is not a Debian machine"

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# The local base image (base-image.sh) is made with debootstrap where no registry answers.
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  log=/var/log/dockerd.log
  (setsid dockerd >"$log" 2>&1 &)
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || unavailable "dockerd did not start: $(tail -n 1 "$log")"
fi
echo "docker engine ready: $(docker version --format '{{.Server.Version}}')"
