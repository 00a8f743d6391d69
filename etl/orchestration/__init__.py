"""Airflow wiring for govbase: the DAG factory, the failure recorder and the
local/scale-out environment helpers.

Nothing here is imported by the pipeline itself: `etl.pipeline` runs without
Airflow, and these modules only translate an Airflow task into one call of it.
Module top levels import only the standard library, PyYAML/pydantic (through
`etl.contracts`) and `airflow.sdk`, so DAG parsing stays fast.
"""
