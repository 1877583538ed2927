# Model server: MLflow's scoring server on a registered model, e.g. models:/segpipe@champion.
# MODEL_URI and MLFLOW_TRACKING_URI come from the environment (the Kubernetes Deployment sets
# them); with the tracking server's --serve-artifacts the pod needs no object-store keys.
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
    SERVING_PORT=8080 \
    SERVING_WORKERS=1 \
    MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT=120

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
# --env-manager local: the image already holds the model's dependencies (segpipe's own).
# Shell form through `sh -c` so the environment is read at start; exec keeps signals working.
ENTRYPOINT ["sh", "-c", "exec mlflow models serve --model-uri \"$MODEL_URI\" --env-manager local --host 0.0.0.0 --port \"$SERVING_PORT\" --workers \"$SERVING_WORKERS\" --timeout \"$MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT\""]
