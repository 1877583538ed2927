# Model server: segpipe's serving/server.py (MLflow's scoring app behind segpipe's request
# checks) on a registered model, e.g. models:/segpipe@champion.
# The server takes its options from the environment (serving/options.py, where their defaults
# are, the same as `segpipe serve`'s): MODEL_URI and the SERVING_* variables docs/serving.md
# lists (SERVING_PORT, SERVING_TIMEOUT, SERVING_BODY_TIMEOUT, ...); and MLFLOW_TRACKING_URI.
# The Kubernetes Deployment sets them; with the tracking server's --serve-artifacts the pod
# needs no object-store keys.
# Build from the repository root:
#   docker build -f infra/docker/serving.Dockerfile -t ghcr.io/segpipe/segpipe-serving:0.1.0 .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_BACKEND=tensorflow \
    MODEL_URI=models:/segpipe@champion \
    SERVING_PORT=8080

WORKDIR /opt/segpipe
COPY pyproject.toml README.md ./
# The versions pinned by `make lock` (resolved from pyproject.toml): reproducible images.
COPY requirements/runtime.lock ./requirements/
COPY segmodels ./segmodels
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
RUN pip install -c requirements/runtime.lock . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin segpipe

USER 10001
WORKDIR /home/segpipe
EXPOSE 8080
# /ping and /health are the scoring server's health routes (200 once the model is loaded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['SERVING_PORT'] + '/ping', timeout=4)"]
# The image already holds the model's dependencies (segpipe's own). Every other option comes
# from the environment, read by the server itself.
ENTRYPOINT ["python", "-m", "serving.server", "--host", "0.0.0.0"]
