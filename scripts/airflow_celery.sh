#!/usr/bin/env bash
# Scale-out profile on one machine: CeleryExecutor + Redis broker + PostgreSQL metadata DB.
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
# Env: GOVBASE_AIRFLOW_DB (database name, default govbase_airflow), AIRFLOW_PORT (8080),
#      GOVBASE_CELERY_BROKER_URL (redis://127.0.0.1:6379/0). See docs/scale-out.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DB="${GOVBASE_AIRFLOW_DB:-govbase_airflow}"
PORT="${AIRFLOW_PORT:-8080}"
psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='${DB}'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database ${DB}"
export GOVBASE_AIRFLOW_DB_URL="postgresql+psycopg://postgres@127.0.0.1:5432/${DB}"
$PY -m etl.orchestration.airflow_env setup --profile celery --port "$PORT"
eval "$($PY -m etl.orchestration.airflow_env env --profile celery --port "$PORT")"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for cmd in "api-server --port $PORT" scheduler dag-processor "celery worker"; do
  # shellcheck disable=SC2086
  airflow $cmd &
  pids+=($!)
done
echo "Airflow (CeleryExecutor) on http://127.0.0.1:${PORT}; admin password in ${AIRFLOW_HOME}/passwords.json"
wait
