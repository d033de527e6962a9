#!/usr/bin/env bash
# Create the databases of the MLflow tracking server, the Prefect server and the prediction log, if they are missing.
# The postgres image runs this once on a fresh volume; the stack test runs it against a local server.
set -euo pipefail
for db in "${MLFLOW_DB:?}" "${PREFECT_DB:?}" "${PREDICTIONS_DB:?}"; do
  if ! psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:?}" --dbname postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '${db}'" | grep -q 1; then
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres -c "CREATE DATABASE \"${db}\""
  fi
done
