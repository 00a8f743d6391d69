"""Department shares: one read-only DuckDB file (plus Parquet) per consumer department.

`build_shares` writes `warehouse/share/<department>/share.duckdb` and, beside it, one
`<table>.parquet` per granted table, holding only the granted columns (schemas/sharing.yml):
- a column of level L3/L4 is masked by its contract's mask kind (110105********002X, 张*明,
  138****1234; dates keep the year); every text also goes through content masking;
- a joinable column becomes `<column>_pseudonym`, HMAC-SHA256 of the value under the
  deployment key (GOVBASE_PSEUDONYM_KEY), with `pseudonym_key_version` beside it: the same
  value under the same key version gives the same pseudonym in every share, so two shares
  join; a rotation (new version) re-keys every share at once;
- core tables keep their `master_id` (and only current rows where the table has history);
- metadata tables `share_grant` (one row per granted column: purpose, level, how shared)
  and `share_info` (department, refreshed_at, key_version);
- every table and column carries its description as a DuckDB comment (etl.descriptions:
  a granted column's is its contract's description).
Each file is built under a temporary name and moved into place with os.replace.

Departments open their share with `open_share`: read-only, external access disabled and the
configuration locked, so the connection reaches nothing but that file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from etl.config import Settings
from etl.contracts import Contracts, SharedTable
from etl.datetypes import DATE
from etl.descriptions import apply_comments, share_descriptions, share_meta_descriptions
from etl.errors import GovbaseError
from etl.faults import checkpoint
from etl.publish.classify import Finding
from etl.publish.grants import Grant, Sharing
from etl.publish.masking import mask, mask_content

SHARE_FILE = "share.duckdb"
VERSION_COLUMN = "pseudonym_key_version"
#: columns of the share_grant metadata table (one row per granted column of a built table)
GRANT_COLUMNS = [
    "department",
    "table_name",
    "column_name",
    "security_level",
    "sharing",
    "shared_as",
    "purpose",
]
INFO_COLUMNS = ["department", "department_name", "refreshed_at", "key_version"]


class ShareError(GovbaseError):
    """A share cannot be published (no key, or a classification finding on a granted column)."""


@dataclass(frozen=True)
class ShareResult:
    department: str
    path: Path
    tables: dict[str, int]  # table -> rows


def open_share(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """Open a department share the way a department must: read-only, no external access
    (no ATTACH, no reading or writing files), configuration locked (cannot be undone by SET)."""
    return duckdb.connect(
        str(path), read_only=True, config={"enable_external_access": False, "lock_configuration": True}
    )


def pseudonymise(values: pd.Series, key: str, version: str) -> pd.Series:
    """HMAC-SHA256 (hex) of each value under `key`, prefixed by the key version; nulls stay null."""
    secret = key.encode("utf-8")

    def one(v: object) -> str | None:
        if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
            return None
        return f"{version}:" + hmac.new(secret, str(v).encode("utf-8"), hashlib.sha256).hexdigest()

    return values.astype(object).map(one).astype("string")


def require_key(settings: Settings) -> tuple[str, str]:
    if not settings.pseudonym_key:
        raise ShareError(
            "GOVBASE_PSEUDONYM_KEY is not set: department shares need the pseudonym key "
            "(`version:secret`, see .env.example); nothing was published"
        )
    return settings.pseudonym_key, settings.pseudonym_key_version


def check_findings(sharing: Sharing, findings: list[Finding]) -> None:
    """Stop when a share would expose a column whose content warrants a higher level."""
    exposed = {
        (g.layer, g.table_name, c)
        for d in sharing.departments.values()
        for g in d.grants
        for c in [*g.columns, *g.joinable]
    }
    hits = [f for f in findings if (f.schema, f.table, f.column) in exposed]
    if hits:
        raise ShareError("classification findings on shared columns: " + "; ".join(f.message() for f in hits))


def _read(con: duckdb.DuckDBPyConnection, g: Grant, table: SharedTable) -> pd.DataFrame:
    present = [r[0] for r in con.execute(f"describe {g.table}").fetchall()]
    cols = [c for c in [*g.columns, *g.joinable] if c in present]
    missing = sorted((set(g.columns) | set(g.joinable)) - set(cols))
    if missing:
        raise ShareError(f"{g.table} has no column(s) {', '.join(missing)} to share")
    lead = ["master_id"] if "master_id" in present else []
    where = " where is_current" if "is_current" in present else ""
    order = ", ".join(f'"{c}"' for c in [*lead, *cols])
    return con.execute(f"select {order} from {g.table}{where} order by {order}").df()


def share_frame(df: pd.DataFrame, g: Grant, table: SharedTable, key: str, version: str) -> pd.DataFrame:
    """The granted columns of `df` as the department sees them (masked, pseudonymised)."""
    out = pd.DataFrame(index=df.index)
    if "master_id" in df.columns:
        out["master_id"] = df["master_id"]
    for c in g.columns:
        col = table.column(c)
        if col.security_level in ("L3", "L4") and col.mask != "none":
            out[c] = mask(df[c].astype("string"), col.mask)
        elif col.type == "date":  # DATE (DuckDB hands DATE to pandas as datetime64)
            out[c] = df[c].astype(DATE)
        elif pd.api.types.is_string_dtype(df[c]) or pd.api.types.is_object_dtype(df[c]):
            out[c] = mask_content(df[c])
        else:
            out[c] = df[c]
    for c in g.joinable:
        out[f"{c}_pseudonym"] = pseudonymise(df[c], key, version)
    if g.joinable:
        out[VERSION_COLUMN] = pd.Series(version, index=df.index, dtype="string")
    return out.reset_index(drop=True)


def _grant_rows(dept: str, g: Grant, table: SharedTable) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for c in [*g.columns, *g.joinable]:
        col = table.column(c)
        how = (
            "pseudonym"
            if c in g.joinable
            else (
                "masked:" + col.mask if col.security_level in ("L3", "L4") and col.mask != "none" else "as is"
            )
        )
        rows.append(
            {
                "department": dept,
                "table_name": g.table,
                "column_name": c,
                "security_level": col.security_level,
                "sharing": col.sharing,
                "shared_as": how,
                "purpose": g.purpose,
            }
        )
    return rows


#: a share's table -> (its description, column -> description): DuckDB comments in the file
Described = dict[str, tuple[str | None, dict[str, str]]]


def _write(
    target: Path,
    frames: dict[str, pd.DataFrame],
    grant: pd.DataFrame,
    info: pd.DataFrame,
    described: Described,
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name, frame in {**frames, "share_grant": grant, "share_info": info}.items():
            con.register("_f", frame)
            con.execute(f'create table "{name}" as select * from _f')
            con.unregister("_f")
            text, columns = described.get(name, (None, {}))
            apply_comments(con, "main", name, text, columns)
    finally:
        con.close()
    checkpoint("publish:after_share_db")
    for name, frame in frames.items():
        ptmp = target.with_name(f"{name}.parquet.tmp")
        frame.to_parquet(ptmp, index=False)
        os.replace(ptmp, target.with_name(f"{name}.parquet"))
        checkpoint("publish:after_share_parquet")
    os.replace(tmp, target)
    checkpoint("publish:after_share")


def build_shares(
    settings: Settings, contracts: Contracts, sharing: Sharing, findings: list[Finding], refreshed_at: str
) -> list[ShareResult]:
    """Build every department's share from the warehouse catalog (see the module docstring)."""
    if not sharing.departments:
        return []
    key, version = require_key(settings)
    check_findings(sharing, findings)
    from etl import meta

    results = []
    with meta.connect(settings, read_only=True) as con:
        built = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        for dept, d in sorted(sharing.departments.items()):
            frames, grant_rows = {}, []
            described: Described = {
                t: share_meta_descriptions(settings.schemas_dir, t, cols)
                for t, cols in (("share_grant", GRANT_COLUMNS), ("share_info", INFO_COLUMNS))
            }
            for g in d.grants:
                if g.table not in built:  # not built yet (no consolidation run): shared once it is
                    continue
                table = contracts.tables[g.table_name]
                name = f"{g.layer}_{g.table_name}"
                frames[name] = share_frame(_read(con, g, table), g, table, key, version)
                described[name] = share_descriptions(
                    contracts.tables, settings.schemas_dir, g.layer, g.table_name, list(frames[name].columns)
                )
                grant_rows += _grant_rows(dept, g, table)
            info = pd.DataFrame(
                [
                    {
                        "department": dept,
                        "department_name": d.name,
                        "refreshed_at": refreshed_at,
                        "key_version": version,
                    }
                ]
            )
            target = settings.warehouse / "share" / dept / SHARE_FILE
            _write(target, frames, pd.DataFrame(grant_rows, columns=GRANT_COLUMNS), info, described)
            results.append(ShareResult(dept, target, {n: len(f) for n, f in frames.items()}))
    return results
