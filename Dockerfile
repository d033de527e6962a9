# One image for every neuroflow service in docker-compose.yml: MLflow server, Prefect server and worker, and the
# prediction service. Dependencies are installed from requirements.lock, the same pins the tests run on.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BENTOML_HOME=/data/bentoml

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml requirements.lock README.md ./
RUN for package in core cli models pipelines pipelines/steps pipelines/bookkeeping pipelines/report service; do mkdir -p "$package" && touch "$package/__init__.py"; done \
    && pip install -c requirements.lock . \
    && pip uninstall -y neuroflow

# neuroflow itself, installed as a package (neuroflow.core, .models, .pipelines, .service, .cli); the sources do not stay in the
# image, so nothing in the working folder can shadow the installed namespace.
COPY __init__.py ./
COPY core ./core
COPY cli ./cli
COPY models ./models
COPY pipelines ./pipelines
COPY service ./service
RUN pip install --no-deps . && rm -rf /src

WORKDIR /app
COPY prefect.yaml ./
COPY docker ./docker
RUN useradd --create-home --uid 10001 neuroflow \
    && mkdir -p /data /mlflow \
    && chown -R neuroflow /data /mlflow /app

USER neuroflow
CMD ["neuroflow", "--help"]
