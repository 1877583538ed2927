# Component image (CPU): every Kubeflow step runs in it, with segpipe preinstalled, so the
# pipeline's lightweight components need no packages_to_install at run time.
# Build from the repository root:
#   docker build -f infra/docker/component.Dockerfile -t ghcr.io/segpipe/segpipe-component:0.1.0 .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_BACKEND=tensorflow

WORKDIR /opt/segpipe
# The dependency list lives in pyproject.toml only; installing the project resolves it.
COPY pyproject.toml README.md ./
# The versions pinned by `make lock` (resolved from pyproject.toml): reproducible images.
COPY requirements/runtime.lock ./requirements/
COPY segmodels ./segmodels
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
# KFP's launcher stages artifacts under /gcs, /minio and /s3 at the filesystem root, which a
# non-root user cannot create: they exist up front, owned by the user the steps run as.
RUN pip install -c requirements/runtime.lock . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin segpipe \
    && mkdir -p /gcs /minio /s3 \
    && chown 10001 /gcs /minio /s3

USER 10001
WORKDIR /home/segpipe
CMD ["segpipe", "--help"]
