"""The pieces of the offline Data Docs (etl.publish.docs_offline) and the custom expectations'
sentences (etl.validate.expectations), without a warehouse: the pages themselves are driven
in Chromium by tests/integration/test_data_docs_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations
import pandas as pd
import pytest

import etl.validate.expectations  # noqa: F401  (registers the custom expectations)
from etl.errors import GovbaseError
from etl.publish import docs_offline
from etl.validate import compiled

pytestmark = pytest.mark.unit

GE_TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
VENDOR = Path(__file__).resolve().parents[2] / "vendor"


def test_ge_templates_load_from_cdns_and_ours_from_the_site() -> None:
    """Every GE template read through the offline view fetches nothing from outside, where
    GE's own page templates do (the reason for the views)."""
    names = sorted(p.name for p in GE_TEMPLATES.glob("*.j2"))
    remote = {
        n for n in names if docs_offline.remote_references((GE_TEMPLATES / n).read_text(encoding="utf-8"))
    }
    assert {"page.j2", "index_page.j2", "js_script_imports.j2"} <= remote
    assert "great-expectations-web-assets" in (GE_TEMPLATES / "top_navbar.j2").read_text(encoding="utf-8")
    env = docs_offline.OfflinePageView().env
    assert env.loader is not None
    for name in [*names, "data_docs_default_styles.css"]:
        source = env.loader.get_source(env, name)[0]
        assert docs_offline.remote_references(source) == [], name
        assert "great-expectations-web-assets" not in source, name  # the logo: GE's image in static/
    page = env.loader.get_source(env, "page.j2")[0]
    assert "{{ govbase_static }}vendor/bootstrap/bootstrap.min.css" in page
    assert "integrity=" not in env.loader.get_source(env, "js_script_imports.j2")[0]


@pytest.mark.parametrize(
    "source",
    [
        '<script src="https://cdn.example.org/new-lib@2/lib.min.js"></script>',
        '{% set images = "https://cdn.example.org/new-lib@2/" %}<img src="{{ images }}logo.png">',
    ],
)
def test_a_template_with_an_unknown_cdn_address_is_an_error_naming_it(source: str) -> None:
    with pytest.raises(GovbaseError, match=r"template x\.j2 loads https://cdn\.example\.org/new-lib@2"):
        docs_offline._rewrite("x.j2", source)


def test_remote_references_finds_what_a_page_fetches_not_its_links() -> None:
    html = (
        '<a href="https://greatexpectations.io">GE</a><script src="./static/vendor/x.js"></script>'
        '<img src="//cdn.example.org/logo.png"><link rel="stylesheet" href="http://x.org/a.css">'
        "<style>.a { background: url('https://bucket.example.org/i.png') } @import 'https://f.org/c.css';</style>"
    )
    assert docs_offline.remote_references(html) == [
        "//cdn.example.org/logo.png",
        "http://x.org/a.css",
        "https://bucket.example.org/i.png",
        "https://f.org/c.css",
    ]


def test_the_assets_are_the_locked_npm_packages(tmp_path: Path) -> None:
    """Each asset comes from a package pinned in vendor/package.json and locked at that
    version; a missing installation is an error naming the set-up step."""
    declared = json.loads((VENDOR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    lock = json.loads((VENDOR / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    for src in docs_offline.ASSETS.values():
        parts = src.split("/")
        package = "/".join(parts[:2]) if src.startswith("@") else parts[0]
        assert package in declared, src
        assert lock[f"node_modules/{package}"]["version"] == declared[package], package
    with pytest.raises(GovbaseError, match=r"not installed: .* run `make setup`"):
        docs_offline.copy_assets(tmp_path / "static", node_modules=tmp_path / "node_modules")
    assert not (tmp_path / "static").exists()


@pytest.mark.parametrize(
    ("etype", "kwargs", "words"),
    [
        (
            "expect_column_values_to_be_valid_resident_id",
            {"column": "resident_id"},
            "check character matches",
        ),
        ("expect_column_values_to_be_valid_credit_code", {"column": "credit_code", "mostly": 0.99}, "99 %"),
        (
            "expect_resident_id_to_agree_with_birth_date",
            {"column_list": ["resident_id", "birth_date"]},
            "must equal the birth date encoded in the resident ID",
        ),
        (
            "expect_resident_id_to_agree_with_gender",
            {"column_list": ["resident_id", "gender"]},
            "must agree with the sex encoded in the resident ID",
        ),
        (
            "expect_column_values_to_be_accepted_by_normalize",
            {"column": "resident_id"},
            "must be accepted by normalize",
        ),
    ],
)
def test_custom_expectations_render_as_sentences(etype: str, kwargs: dict[str, object], words: str) -> None:
    """GE's legacy prescriptive renderer (the Data Docs pages) and the atomic summary both
    give a sentence naming the columns, not GE's fallback `expect_...(**kwargs)`."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.registry import get_renderer_impl

    config = ExpectationConfiguration(type=etype, kwargs=kwargs, meta={"reason": "resident_id_checksum"})
    _, legacy = get_renderer_impl(etype, "renderer.prescriptive")
    (block,) = legacy(configuration=config)
    template = block.string_template["template"]
    params = block.string_template["params"]
    text = template
    for name in sorted(params, key=len, reverse=True):
        text = text.replace(f"${name}", str(params[name]))
    assert words in text and "$" not in text and "expect_" not in text, text
    for column in kwargs.get("column_list", [kwargs.get("column")]):  # type: ignore[union-attr]
        assert column in text
    expectation = config.to_domain_obj()
    expectation.render()
    (summary,) = expectation.rendered_content
    assert summary.value.template == template and "expectation_type" not in summary.value.template


def test_normalize_results_count_distinct_rows_per_column_as_ge_would() -> None:
    """Two errors of one row on one column are one rejected row; GE, given normalize's
    verdicts as a column, finds the same count."""
    errors = pd.DataFrame(
        {
            "_batch_id": ["b1", "b1", "b1", "b2", "b1"],
            "_row_number": [3, 3, 7, 3, 9],
            "column": ["resident_id", "resident_id", "resident_id", "resident_id", "birth_date"],
            "raw_value": ["x"] * 5,
            "reason": [
                "resident_id_checksum",
                "resident_id_format",
                "resident_id_checksum",
                "x",
                "invalid_date",
            ],
            "detail": [""] * 5,
        }
    )
    results = {
        r["expectation_config"]["kwargs"]["column"]: r for r in compiled.normalize_results(errors, 20, "src")
    }
    assert set(results) == {"resident_id", "birth_date"}
    rid = results["resident_id"]
    assert (rid["result"]["unexpected_count"], rid["result"]["element_count"]) == (3, 20)
    assert rid["expectation_config"]["meta"]["reason"] == "resident_id_checksum,resident_id_format,x"
    assert rid["success"] is False and results["birth_date"]["result"]["unexpected_count"] == 1
    assert compiled.normalize_results(errors.iloc[0:0], 20, "src") == []
    # GE on a column of verdicts: 20 delivered rows, the 3 rejected ones false
    from etl.validate.runner import _run

    verdicts = pd.DataFrame({"resident_id": [i not in (0, 1, 2) for i in range(20)]})
    ge = _run(
        "normalize_check",
        verdicts,
        "t",
        [{"type": compiled.NORMALIZE_EXPECTATION, "kwargs": {"column": "resident_id"}}],
    )
    assert ge.results[0].result["unexpected_count"] == rid["result"]["unexpected_count"]
    assert ge.results[0].success is rid["success"]
