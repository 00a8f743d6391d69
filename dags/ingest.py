"""All govbase DAGs, generated from schemas/sources/*.yml.

Wiring only (logic lives in etl/, nothing heavy at parse time): one `ingest__<source>` DAG per source contract
and the data-aware `publish` DAG. The factory lives in etl.orchestration.factory;
adding a department is one YAML file, no code here.
"""

from __future__ import annotations

from etl.orchestration.factory import build_all

# Airflow discovers DAG objects among the module's globals.
globals().update(build_all())
