"""The data dictionary: the unified standard handed to departments, generated from the contracts.

`build_dictionary` writes, into one folder (default `$GOVBASE_HOME/reports/standard/`):
- `dictionary.html`: one self-contained page (inline CSS, no script, nothing fetched) with
  every shared table's columns (meaning, type, code list, security level, sharing and open
  category, mask, checks with their quarantine reasons, the source fields feeding it), each
  source's field map into it (delivered field -> column, transforms, combine rules, fields
  kept in raw only, the record key) and every code list of schemas/reference;
- `schema/<table>.schema.json`: a JSON Schema (draft 2020-12) per shared table, for a
  record in the shared shape (dates as YYYY-MM-DD). Code lists become `enum`, `pattern` and
  `range` checks `pattern` / `minimum` / `maximum`, resident IDs and credit codes their
  pattern (the checksum is the one check JSON Schema cannot state: `x-govbase-checks` names
  it); the security level, sharing and open category are `x-govbase-*` annotations.

Nothing in them depends on the time of the build: the same contracts give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from etl import reference
from etl.config import Settings
from etl.contracts import Check, Column, Contracts, SharedTable, Source
from etl.quality import REASONS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: the form of a valid value where the check is a checksum (the checksum itself is not expressible)
ID_PATTERNS = {
    "resident_id": "^[0-9]{17}[0-9X]$",
    "credit_code": "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
}
_JSON_TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "boolean": {"type": "boolean"},
    "timestamp": {"type": "string", "format": "date-time"},
}
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Dictionary:
    html: Path
    schemas: dict[str, Path]


def required_columns(table: SharedTable) -> list[str]:
    """Columns a record must hold a value in: keys, nullable: false, not_null checks."""
    return [
        c.name
        for c in table.columns
        if c.name in table.keys or not c.nullable or any(k.kind == "not_null" for k in c.checks)
    ]


def _column_schema(col: Column, required: bool, reference_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"description": col.description, **_JSON_TYPES[col.type]}
    for check in col.checks:
        if check.kind == "accepted_values":
            out["enum"] = reference.codes(reference_dir, str(check.code_list))
        elif check.kind == "pattern":
            out["pattern"] = check.regex
        elif check.kind in ID_PATTERNS:
            out["pattern"] = ID_PATTERNS[check.kind]
        elif check.kind == "range":
            if check.min is not None:
                out["minimum"] = check.min
            if check.max is not None:
                out["maximum"] = check.max
    if not required:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    out["x-govbase-security-level"] = col.security_level
    out["x-govbase-sharing"] = col.sharing
    out["x-govbase-open"] = col.open
    out["x-govbase-mask"] = col.mask
    out["x-govbase-checks"] = [{"check": c.kind, "reason": c.reason} for c in col.checks]
    return out


def json_schema(table: SharedTable, reference_dir: Path) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one record of a shared table."""
    required = required_columns(table)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:govbase:standard:{table.name}",
        "title": table.name,
        "description": table.description.strip(),
        "type": "object",
        "properties": {c.name: _column_schema(c, c.name in required, reference_dir) for c in table.columns},
        "required": required,
        "additionalProperties": False,
        "x-govbase-grain": table.grain,
        "x-govbase-keys": table.keys,
        "x-govbase-data-grade": table.data_grade,
    }


def check_text(check: Check) -> str:
    """A check in words, with its quarantine reason."""
    what = {
        "not_null": "required",
        "unique": "unique within a batch",
        "accepted_values": f"a code of list {check.code_list}",
        "pattern": f"matches {check.regex}",
        "range": " and ".join(
            p
            for p in (
                f">= {check.min:g}" if check.min is not None else "",
                f"<= {check.max:g}" if check.max is not None else "",
            )
            if p
        ),
        "resident_id": "a valid resident ID (GB 11643, checksum)",
        "credit_code": "a valid unified social credit code (GB 32100, checksum)",
    }[check.kind]
    return f"{what} (else {check.reason})"


def zh(value: object) -> Markup:
    """Escaped text, with runs holding Chinese marked lang="zh-Hans" (fonts, line breaking)."""
    text = "" if value is None else str(value)
    if not _CJK.search(text):
        return escape(text)
    return Markup('<span lang="zh-Hans">') + escape(text) + Markup("</span>")


def _feeds(contracts: Contracts) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(table, column) -> [(source, delivered field)] feeding it."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for src in contracts.sources.values():
        for f in src.fields:
            if f.to:
                out.setdefault((src.table, f.to), []).append((src.name, f.name))
        if src.record_key:
            out.setdefault((src.table, "record_key"), []).append((src.name, " | ".join(src.record_key)))
        if src.unpivot:
            up = src.unpivot
            out.setdefault((src.table, up.variable_to), []).append((src.name, f"field names {up.pattern}"))
            out.setdefault((src.table, up.value_to), []).append((src.name, f"fields {up.pattern}"))
    return out


def field_rows(src: Source) -> list[dict[str, Any]]:
    """A source's field map as rows for the page."""
    rows = []
    for f in src.fields:
        to = src.column_of(f.name)
        rule = src.combine.get(to) if to else None
        rows.append(
            {
                "field": f.name,
                "to": to,
                "unpivot": f.to is None and to is not None,
                "transforms": ", ".join(f.transforms),
                "trust": f.trust,
                "required": f.required,
                "combine": rule,
                "record_key": f.name in src.record_key,
            }
        )
    return rows


def code_lists(reference_dir: Path) -> dict[str, list[dict[str, str]]]:
    """Every code list of schemas/reference, its rows as etl.reference reads them."""
    out: dict[str, list[dict[str, str]]] = {}
    for name in reference.code_list_names(reference_dir):
        df = reference.code_list(reference_dir, name).astype(str)
        out[name] = [dict(zip(df.columns, row, strict=True)) for row in df.itertuples(index=False)]
    return out


def contracts_version(schemas_dir: Path) -> str:
    """sha256 over the contract files (path and bytes): names the standard a page shows."""
    h = hashlib.sha256()
    for p in sorted(schemas_dir.rglob("*")):
        if p.is_file() and p.suffix in (".yml", ".csv"):
            h.update(p.relative_to(schemas_dir).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def render_html(contracts: Contracts, schemas_dir: Path) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["zh"] = zh
    env.globals.update(check_text=check_text, REASONS=REASONS)
    reference_dir = schemas_dir / "reference"
    return env.get_template("dictionary.html").render(
        tables=[contracts.tables[n] for n in sorted(contracts.tables)],
        sources=[contracts.sources[n] for n in sorted(contracts.sources)],
        feeds=_feeds(contracts),
        field_rows=field_rows,
        required={n: set(required_columns(t)) for n, t in contracts.tables.items()},
        code_lists=code_lists(reference_dir),
        version=contracts_version(schemas_dir)[:16],
    )


def default_dir(settings: Settings) -> Path:
    return settings.reports_dir / "standard"


def build_dictionary(settings: Settings, contracts: Contracts, out_dir: Path | None = None) -> Dictionary:
    """Write dictionary.html and schema/<table>.schema.json under `out_dir` (module docstring)."""
    out = out_dir or default_dir(settings)
    (out / "schema").mkdir(parents=True, exist_ok=True)
    schemas = {}
    for name, table in sorted(contracts.tables.items()):
        path = out / "schema" / f"{name}.schema.json"
        text = json.dumps(
            json_schema(table, settings.schemas_dir / "reference"), ensure_ascii=False, indent=2
        )
        _write_if_changed(path, text + "\n")
        schemas[name] = path
    html_path = out / "dictionary.html"
    _write_if_changed(html_path, render_html(contracts, settings.schemas_dir))
    return Dictionary(html_path, schemas)


def _write_if_changed(path: Path, text: str) -> None:
    """Leave a file that already holds `text` untouched (publishing twice changes nothing)."""
    data = text.encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


__all__ = ["Dictionary", "build_dictionary", "default_dir", "json_schema", "render_html", "required_columns"]
