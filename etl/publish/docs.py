"""Great Expectations Data Docs under $GOVBASE_HOME/docs/, built from the
validation results that the validate stage keeps under warehouse/validation/,
with one page per table suite.

The suites are built from the contracts (etl.validate.suites) and stored, full, in
the GE file context of the home ($GOVBASE_HOME/gx/expectations/<table>.json): that
is what GE tools and the Data Docs read. A publish stores a suite again, and renders
its page, only when the contracts changed it. The batch-level suites the results name
(<table>_batch, <table>_volume) hold the checks each source was last validated against.

The pages load nothing from the internet: the site renders with the views of
etl.publish.docs_offline (assets from vendor/node_modules, installed by `make setup`);
docs/data-docs.md.
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

    import etl.validate.expectations  # noqa: F401  (registers the custom expectations: their pages render)
    from etl.publish import docs_offline

    ctx = gx.get_context(mode="file", project_root_dir=str(settings.home))
    site_changed = _docs_site(ctx, settings)
    docs_offline.copy_assets(settings.docs_dir / "static")  # fails, naming `make setup`, when not installed
    suites = _store_suites(ctx, settings)
    new, validated = _store_results(ctx.validation_results_store, settings, rows)
    suites += _store_validated_suites(ctx, validated)
    index = settings.docs_dir / "index.html"
    if site_changed or new or suites or not index.exists():
        # render the new results and changed suites only (earlier pages stay), then the index;
        # every page when the site's configuration changed (pages of an older version)
        todo = None if site_changed else [*suites, *new] or None
        with _render_errors(settings.docs_dir):
            ctx.build_data_docs(site_names=["govbase"], resource_identifiers=todo)
        docs_offline.localize_static_styles(settings.docs_dir / "static")
    log.info("Data Docs: %d new validation result(s), %d changed suite(s) rendered", len(new), len(suites))
    return index


def _store_results(
    store: Any, settings: Settings, rows: list[tuple[Any, ...]]
) -> tuple[list[Any], dict[str, dict[str, list[dict[str, Any]]]]]:
    """Store the results of meta.validation_result `rows` not stored yet; returns their ids,
    and the checks of the suites results name without a table contract of their own
    (<table>_batch, <table>_volume: set per source), the latest of each source."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    new: list[ValidationResultIdentifier] = []
    validated: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for run_id, source, table, logical_date, path, validated_at in rows:
        p = settings.warehouse / path  # stored relative to the warehouse root
        if not p.exists():
            continue
        results = json.loads(p.read_text())
        run = RunIdentifier(run_name=run_id, run_time=validated_at.replace(tzinfo=dt.UTC))
        for kind, items in (("rows", results.get("rows", [])), ("batch", results.get("batch", []))):
            for i, item in enumerate(items):
                if kind == "batch":
                    validated.setdefault(item.get("suite_name", table), {})[source] = [
                        r["expectation_config"] for r in item.get("results", [])
                    ]
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
    return new, validated


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


def _store_validated_suites(ctx: Any, validated: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Any]:
    """Store, where it changed, each suite that results name without a table contract of its
    own (the batch level: null rates and volume bands are set per source), holding the
    checks each source was last validated against; returns their ids. Every "Expectation
    Suite" link of a validation page then leads to a page."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
    from great_expectations.exceptions import DataContextError

    from etl.validate.runner import gx_suite

    changed = []
    for name, by_source in sorted(validated.items()):
        # one expectation per check (type and keywords: GE keeps one of each in a suite),
        # naming every source validated against it
        merged: dict[str, dict[str, Any]] = {}
        for source, configs in sorted(by_source.items()):
            for e in configs:
                key = json.dumps([e["type"], e["kwargs"]], sort_keys=True)
                if key not in merged:
                    merged[key] = {**e, "meta": {**(e.get("meta") or {}), "sources": []}}
                meta = merged[key]["meta"]
                meta["sources"].append(source)
                origin = (e.get("meta") or {}).get("from")
                if origin and origin not in str(meta.get("from", "")).split(", "):
                    meta["from"] = f"{meta['from']}, {origin}" if meta.get("from") else origin
        expectations = list(merged.values())
        try:
            stored = ctx.suites.get(name).to_json_dict()
        except DataContextError:
            stored = None
        if stored is not None and _configs(stored["expectations"]) == _configs(expectations):
            continue
        meta = {
            "description": (
                f"The batch-level checks the sources were last validated against under {name} "
                "(meta.sources names them): null rates (max_null_rate) and the volume band "
                "(volume_band) of schemas/sources/<source>.yml, and the batch-level expectations "
                "of the table's contract."
            )
        }
        ctx.suites.add_or_update(gx_suite(name, expectations, meta))
        changed.append(ExpectationSuiteIdentifier(name=name))
    return changed


def _docs_site(ctx: Any, settings: Settings) -> bool:
    """The `govbase` Data Docs site of the context, writing to $GOVBASE_HOME/docs. Its
    folder is stored relative to the context's root (GE resolves it there), so a copied
    or moved home writes its own docs, never the original's; an absolute one, written
    by an older version, is replaced, as is a site of an older version that loaded its
    assets from CDNs. Returns whether the site's configuration was written (its pages are
    then all rendered again)."""
    from etl.publish.docs_offline import view_config

    base = os.path.relpath(settings.docs_dir, ctx.root_directory)
    config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base},
        # GE's walkthrough pop-up and "how to" buttons teach GE's CLI: not govbase's
        "show_how_to_buttons": False,
        # the pages' stylesheets and scripts from the site's own static/vendor/, not from CDNs
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": view_config(index=True)},
        "site_section_builders": {
            "expectations": {"view": view_config()},
            "validations": {"view": view_config()},
            "profiling": {"view": view_config()},
        },
    }
    sites = ctx.config.data_docs_sites or {}
    if "govbase" not in sites:
        ctx.add_data_docs_site("govbase", config)
        return True
    if json.dumps(sites["govbase"], sort_keys=True, default=str) != json.dumps(config, sort_keys=True):
        ctx.update_data_docs_site("govbase", config)
        return True
    return False
