#!/usr/bin/env bash
# The base image the project's images build on: python:3.11-slim from its registry where one is
# reachable; where none is, a local stand-in of the same name's shape built here: Debian bookworm
# (the release python:3.11-slim is built on) with its Python 3.11, venv and pip, `python` linked to
# python3, and the host's extra CA certificates, so that builds reach the package indexes the
# way the host does. Prints the image's name on its last line (the build argument BASE_IMAGE).
# Usage: base-image.sh [REMOTE [LOCAL]]   defaults: python:3.11-slim, local/python:3.11-slim
set -euo pipefail
remote=${1:-python:3.11-slim}
tag=${2:-local/python:3.11-slim}
for image in "$remote" "$tag"; do
  if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi
done
if timeout 90 docker pull --quiet "$remote" >/dev/null 2>&1; then echo "$remote"; exit 0; fi
echo "$remote cannot be pulled: building the local stand-in $tag" >&2
command -v debootstrap >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" \
  >/dev/null
# The host's own additions to its CA store (a TLS-inspecting proxy's CA, where there is one).
find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$root/usr/local/share/ca-certificates/" \; 2>/dev/null || true
chroot "$root" update-ca-certificates >/dev/null
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$tag" >/dev/null
echo "built $tag: $(docker run --rm "$tag" python --version)" >&2
echo "$tag"
