# fashion-serve images. Targets:
#   serve      (default) gunicorn + onnxruntime + the shipped models/, no TensorFlow
#   train      python -m training: TensorFlow, tf2onnx and Debian's Fashion-MNIST files
#   serve-gpu  the service on onnxruntime-gpu with the CUDA libraries from PyPI
# Build with BuildKit (Compose v2, or DOCKER_BUILDKIT=1): it builds only the stages a target
# needs, so `serve` never waits for TensorFlow or the CUDA wheels. BASE_IMAGE lets a machine
# without a registry build on a local stand-in for python:3.11-slim.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="fashion-serve" \
      org.opencontainers.image.description="Fashion-MNIST classifiers served from a versioned ONNX model registry over HTTP" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    FASHION_MODEL_DIR=/app/models
# One fixed uid for every target: the api and the train job share the registry volume, and each
# must be able to write what the other wrote.
RUN groupadd --system --gid 10001 fashion \
    && useradd --system --uid 10001 --gid fashion --create-home --home-dir /home/fashion fashion
WORKDIR /app

# uv installs the locked sets from uv.lock (pip's pure-Python resolver and installer take many
# times longer for TensorFlow); builder stages mount it, so it never ships in an image.
# UV_NATIVE_TLS: trust the image's CA store as pip does (uv's built-in roots miss a
# TLS-inspecting proxy's CA).
FROM base AS uv
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --target /uv "uv==${UV_VERSION}"

# The serving dependencies exactly as locked (`uv sync --locked`: a lock that no longer matches
# pyproject.toml stops the build), in a venv without pip; bytecode compiled now, since the
# non-root user cannot write it at run time. The project itself is copied, not installed.
FROM base AS venv-serve
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_NATIVE_TLS=1 UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
# Left out of what ships: the packages' own test suites (17 MB) and onnxruntime's offline
# tooling (transformer optimizers, quantization, converters: 9 MB), which serving never imports.
RUN --mount=from=uv,source=/uv/bin/uv,target=/usr/local/bin/uv \
    uv sync --locked --no-default-groups --no-install-project --compile-bytecode \
        --python /usr/local/bin/python \
    && site=/opt/venv/lib/python3.11/site-packages \
    && find "$site" -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf "$site"/onnxruntime/transformers "$site"/onnxruntime/quantization \
        "$site"/onnxruntime/tools

# The same set with onnxruntime swapped for onnxruntime-gpu of the same version, plus its CUDA
# and cuDNN wheels (the [cuda,cudnn] extras), so the image needs no CUDA base image.
FROM base AS venv-gpu
ENV UV_NATIVE_TLS=1 UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock ./
RUN --mount=from=uv,source=/uv/bin/uv,target=/usr/local/bin/uv \
    uv export --locked --no-default-groups --no-emit-project --no-hashes --format requirements.txt \
        --output-file /tmp/serve.txt \
    && ort="$(sed -n 's/^onnxruntime==\([^ ;]*\).*/\1/p' /tmp/serve.txt)" \
    && sed -i '/^onnxruntime==/d' /tmp/serve.txt \
    && python3 -m venv --without-pip /opt/venv \
    && uv pip install --compile-bytecode --python /opt/venv/bin/python \
        -r /tmp/serve.txt "onnxruntime-gpu[cuda,cudnn]==${ort}" \
    && rm /tmp/serve.txt

# How both service images run; their files come in their own stages, the venv first: it changes
# least, so a new model or code change ships small layers.
FROM base AS app
ENV FASHION_BIND=0.0.0.0:8000
EXPOSE 8000
# slim has no curl: the stdlib asks /readyz, and any error (503, refused, timeout) exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["gunicorn", "--config", "service/gunicorn.conf.py", "service.wsgi:app"]

# Training: the serving venv (the registry and onnxruntime for the parity check) plus TensorFlow
# and, as `make train` syncs, the evaluation group (scikit-image's sample photos: the card's
# non-clothing figures, evaluation.non_clothing).
FROM venv-serve AS train
LABEL org.opencontainers.image.title="fashion-serve-train"
# The real data, from Debian: /usr/share/datasets/fashion-mnist (training's default folder).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist=0.0~git20200523.55506a9-1 \
    && rm -rf /var/lib/apt/lists/*
# No bytecode compiled ahead here: TensorFlow's thousands of modules would take minutes on a small
# machine, and a training run compiles the ones it imports in a fraction of that.
RUN --mount=from=uv,source=/uv/bin/uv,target=/usr/local/bin/uv \
    uv sync --locked --no-default-groups --extra train --group evaluation --no-install-project \
        --python /usr/local/bin/python
# The shipped registry here too, so a volume seeded by this image first looks the same.
COPY --chown=10001:10001 models/ models/
COPY service/ service/
COPY training/ training/
# The promotion gate (--promote ALIAS --gate).
COPY evaluation/ evaluation/
ENV MPLBACKEND=Agg
USER 10001:10001
ENTRYPOINT ["python", "-m", "training"]

FROM app AS serve-gpu
LABEL org.opencontainers.image.title="fashion-serve-gpu"
COPY --from=venv-gpu /opt/venv /opt/venv
# onnxruntime's CUDA provider loads libcudart, cuBLAS, cuDNN… by name: let the loader find them
# in the nvidia wheels inside the venv.
RUN find /opt/venv -path '*/site-packages/nvidia/*' -type d -name lib \
        > /etc/ld.so.conf.d/nvidia-wheels.conf \
    && ldconfig
# Owned by the service user: hot reload reads it, the API moves aliases in it.
COPY --chown=10001:10001 models/ models/
COPY service/ service/
RUN python -m compileall -q service
ENV FASHION_DEVICE=cuda
USER 10001:10001

# The default target, last on purpose: a plain `docker build .` gives the CPU service.
FROM app AS serve
COPY --from=venv-serve /opt/venv /opt/venv
COPY --chown=10001:10001 models/ models/
COPY service/ service/
# The service's own bytecode too: every worker imports it at start, and cannot write it.
RUN python -m compileall -q service
USER 10001:10001
