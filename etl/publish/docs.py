"""Great Expectations Data Docs under $GOVBASE_HOME/docs/, built from the
validation results that the validate stage keeps under warehouse/validation/,
with one page per table suite.

The suites are built from the contracts (etl.validate.suites) and stored, full, in
the GE file context of the home ($GOVBASE_HOME/gx/expectations/<table>.json): that
is what GE tools and the Data Docs read. A publish stores a suite again, and renders
its page, only when the contracts changed it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl import meta
from etl.config import Settings
from etl.errors import GovbaseError, write_error

log = logging.getLogger(__name__)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _render_errors(docs_dir: Path) -> Iterator[None]:
    """GE logs a page it fails to render (with a traceback) and goes on: collect those
    messages instead of printing them, and fail with one clear error naming the first."""
    ge_log = logging.getLogger("great_expectations")
    collect, propagate = _Collect(), ge_log.propagate
    ge_log.addHandler(collect)
    ge_log.propagate = False
    try:
        yield
    finally:
        ge_log.removeHandler(collect)
        ge_log.propagate = propagate
    if collect.messages:
        first = next((m for m in collect.messages if "Error: " in m), collect.messages[0])
        cause = (
            first[first.find("Error: ") + 7 :].split('"')[0].split("\n")[0].strip()
            if "Error: " in first
            else ""
        )
        problem = f"{len(collect.messages)} Data Docs page(s) under {docs_dir} failed to render: {cause or first[:300]}"
        raise write_error(OSError(problem), "the Data Docs") or GovbaseError(problem)


def build_data_docs(settings: Settings) -> Path | None:
    """Store and render the validation results not rendered yet, rebuild the index; returns
    the index page (None when nothing was ever validated). Earlier pages are kept, so a
    publish costs what is new, not the whole history."""
    with meta.connect(settings) as con:
        rows = con.execute(
            "select run_id, source, table_name, logical_date, ge_result_path, validated_at "
            "from meta.validation_result order by validated_at"
        ).fetchall()
    if not rows:
        return None
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    import etl.validate.expectations  # noqa: F401  (registers the custom expectations: their pages render)

    ctx = gx.get_context(mode="file", project_root_dir=str(settings.home))
    _docs_site(ctx, settings)
    suites = _store_suites(ctx, settings)
    store = ctx.validation_results_store
    new: list[ValidationResultIdentifier] = []
    for run_id, source, table, logical_date, path, validated_at in rows:
        p = settings.warehouse / path  # stored relative to the warehouse root
        if not p.exists():
            continue
        results = json.loads(p.read_text())
        run = RunIdentifier(run_name=run_id, run_time=validated_at.replace(tzinfo=dt.UTC))
        for kind, items in (("rows", results.get("rows", [])), ("batch", results.get("batch", []))):
            for i, item in enumerate(items):
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(
                        name=item.get("suite_name", table)
                    ),
                    run_id=run,
                    batch_identifier=f"{source}__{logical_date}__{kind}{i}",
                )
                if store.has_key(key):
                    continue  # stored and rendered by an earlier publish
                # the page header names the run and the source, whichever engine validated
                # (GE's page renderer reads the asset name from batch_spec)
                asset = f"{source} {logical_date} ({kind})"
                info = {
                    **(item.get("meta") or {}),
                    "run_id": {"run_name": run_id, "run_time": run.run_time.isoformat()},
                    "batch_spec": {"data_asset_name": asset},
                    "active_batch_definition": {
                        "datasource_name": "govbase",
                        "data_connector_name": "govbase",
                        "data_asset_name": asset,
                        "batch_identifiers": {},
                    },
                }
                store.set(key, ExpectationSuiteValidationResult(**{**item, "meta": info}))
                new.append(key)
    index = settings.docs_dir / "index.html"
    if new or suites or not index.exists():
        # render the new results and changed suites only (earlier pages stay), then the index
        with _render_errors(settings.docs_dir):
            ctx.build_data_docs(site_names=["govbase"], resource_identifiers=[*suites, *new] or None)
    log.info("Data Docs: %d new validation result(s), %d changed suite(s) rendered", len(new), len(suites))
    return index


def _configs(expectations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """What makes two suites the same, comparable across GE's JSON and the built dicts."""
    return [
        (e["type"], json.dumps(e["kwargs"], sort_keys=True), json.dumps(e.get("meta", {}), sort_keys=True))
        for e in expectations
    ]


def _store_suites(ctx: Any, settings: Settings) -> list[Any]:
    """Store each table's full suite in the GE context where it changed; returns their ids."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
    from great_expectations.exceptions import DataContextError

    from etl.contracts import get_contracts
    from etl.validate.runner import gx_suite
    from etl.validate.suites import build_suite

    changed = []
    for name, table in sorted(get_contracts(settings).tables.items()):
        built = build_suite(table, settings.expectations_dir, settings.schemas_dir / "reference")
        try:
            stored = ctx.suites.get(name).to_json_dict()
        except DataContextError:  # not stored yet
            stored = None
        if stored is not None and _configs(stored["expectations"]) == _configs(built["expectations"]):
            continue
        ctx.suites.add_or_update(gx_suite(name, built["expectations"], built["meta"]))
        changed.append(ExpectationSuiteIdentifier(name=name))
    return changed


def _docs_site(ctx: Any, settings: Settings) -> None:
    """The `govbase` Data Docs site of the context, writing to $GOVBASE_HOME/docs. Its
    folder is stored relative to the context's root (GE resolves it there), so a copied
    or moved home writes its own docs, never the original's; an absolute one, written
    by an older version, is replaced."""
    base = os.path.relpath(settings.docs_dir, ctx.root_directory)
    config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    sites = ctx.config.data_docs_sites or {}
    if "govbase" not in sites:
        ctx.add_data_docs_site("govbase", config)
    elif sites["govbase"].get("store_backend", {}).get("base_directory") != base:
        ctx.update_data_docs_site("govbase", config)
