# Component image for GPU nodes: TensorFlow's CUDA build from its official image, segpipe on top.
# pip keeps the image's TensorFlow because it satisfies pyproject's tensorflow pin; the base
# image's Python is the system one, hence PIP_BREAK_SYSTEM_PACKAGES (ignored by older pips).
# Build from the repository root:
#   docker build -f infra/docker/component-gpu.Dockerfile \
#     -t ghcr.io/segpipe/segpipe-component-gpu:0.1.0 .
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_BACKEND=tensorflow

WORKDIR /opt/segpipe
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
