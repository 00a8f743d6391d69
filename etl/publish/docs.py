"""Great Expectations Data Docs under $GOVBASE_HOME/docs/, built from the
validation results that the validate stage keeps under warehouse/validation/."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from etl import meta
from etl.config import Settings

log = logging.getLogger(__name__)


def build_data_docs(settings: Settings) -> Path | None:
    """Render every recorded validation result; returns the index page (None when there is none)."""
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

    ctx = gx.get_context(mode="file", project_root_dir=str(settings.home))
    if "govbase" not in (ctx.config.data_docs_sites or {}):
        ctx.add_data_docs_site(
            "govbase",
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(settings.docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    for run_id, source, table, logical_date, path, validated_at in rows:
        p = Path(path)
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
                ctx.validation_results_store.set(key, ExpectationSuiteValidationResult(**item))
    ctx.build_data_docs(site_names=["govbase"])
    return settings.docs_dir / "index.html"
