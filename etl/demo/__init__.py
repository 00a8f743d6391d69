"""Seeded generator of realistic, messy department sources plus their ground truth.

    generate(settings, persons=2000, seed=42, sql_url=None, progress=None) -> DemoSummary

Writes landing/<source>/ for the 8 sources of schemas/sources/ and
landing/_truth/ (population + one truth table per source; format in
etl/demo/README.md). Same seed -> same bytes in every file. Side effects:
overwrites those files; with sql_url also (re)creates enterprise_registry in
that database. Defect rates per source: etl.demo.sources.RATES.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.config import Settings
from etl.demo.events import make_events, state_at
from etl.demo.population import DROP_DATE, Regions, make_organisations, make_persons
from etl.demo.sources import BUILDERS, RATES, Built, Ctx, build_samr_registry, set_schemas_dir, write_registry
from etl.demo.truth import identity_flags, link_rows
from etl.reference import load_regions

__all__ = ["DROP_DATE", "RATES", "DemoSummary", "SourceSummary", "generate", "write_registry"]

SOURCE_ORDER = [
    "ps_hukou",
    "tax_registration",
    "hrss_insurance",
    "nhc_health",
    "ca_marriage",
    "samr_registry",
    "ca_assistance",
    "stats_indicators",
]


@dataclass
class SourceSummary:
    files: list[Path]
    rows: int


@dataclass
class DemoSummary:
    persons: int
    organisations: int
    seed: int
    truth_dir: Path
    sources: dict[str, SourceSummary] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"demo data: {self.persons} persons, {self.organisations} organisations, seed {self.seed}"]
        for name, s in self.sources.items():
            lines.append(f"  {name:<18} {s.rows:>9} rows  {', '.join(p.name for p in s.files)}")
        lines.append(f"  truth: {self.truth_dir}  ({self.seconds:.1f}s)")
        return "\n".join(lines)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")


def generate(
    settings: Settings,
    persons: int = 2000,
    seed: int = 42,
    *,
    sql_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    drop_date: str = DROP_DATE,
) -> DemoSummary:
    """Generate every demo source under settings.landing and the truth under settings.truth_dir.

    `drop_date` (YYYYMMDD) names the delivered files, as departments date their drops;
    generating again with another drop date adds a second delivery beside the first. A drop
    after the base date (DROP_DATE) shows the seed's events up to that date (etl.demo.events:
    deaths, marriages, moves, phone changes, births, deregistrations): the same records under
    the same record keys with updated values, plus the records the events add.
    """
    if persons < 15:
        raise ValueError("persons must be at least 15 (one organisation per 15 persons)")
    if not (len(drop_date) == 8 and drop_date.isdigit()):
        raise ValueError(f"drop_date must be YYYYMMDD, not {drop_date!r}")
    try:
        day = np.datetime64(f"{drop_date[:4]}-{drop_date[4:6]}-{drop_date[6:]}", "D")
    except ValueError:
        raise ValueError(f"drop_date must be a date YYYYMMDD, not {drop_date!r}") from None
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    set_schemas_dir(settings.schemas_dir)
    regions = Regions.from_reference(load_regions(settings.project_dir))
    say(f"population: {persons} persons")
    base = make_persons(np.random.default_rng([seed, 0]), persons, regions)
    base_orgs = make_organisations(np.random.default_rng([seed, 1]), max(persons // 15, 1), base, regions)
    people, orgs, events = state_at(base, base_orgs, make_events(seed, base, base_orgs, regions), day)
    settings.landing.mkdir(parents=True, exist_ok=True)
    truth_dir = settings.truth_dir
    truth_dir.mkdir(parents=True, exist_ok=True)
    _write_parquet(_persons_truth(people), truth_dir / "persons.parquet")
    _write_parquet(_orgs_truth(orgs), truth_dir / "organisations.parquet")
    _write_parquet(_events_truth(events), truth_dir / "events.parquet")
    ctx = Ctx(
        landing=settings.landing,
        persons=people,
        orgs=orgs,
        regions=regions,
        seed=seed,
        drop_date=drop_date,
        base_persons=base,
        base_orgs=base_orgs,
        events=events,
    )
    summary = DemoSummary(persons=persons, organisations=len(orgs), seed=seed, truth_dir=truth_dir)
    links = []
    for name in SOURCE_ORDER:
        say(f"{name} ...")
        if name == "samr_registry":
            files, truth = build_samr_registry(ctx, sql_url)
        else:
            files, truth = BUILDERS[name](ctx)
            files, truth = _with_fresh_records(name, ctx, files, truth)
        truth = identity_flags(truth, orgs)
        _write_parquet(truth, truth_dir / f"{name}.parquet")
        links.append(link_rows(truth))
        summary.sources[name] = SourceSummary(files=files, rows=len(truth))
        say(f"{name}: {len(truth)} rows")
    _write_parquet(pd.concat(links, ignore_index=True), truth_dir / "links.parquet")
    summary.seconds = time.perf_counter() - t0
    return summary


def _with_fresh_records(name: str, ctx: Ctx, files: list[Path], truth: pd.DataFrame) -> Built:
    """Append the records the events add to a source's delivery: newborns to the household
    register and the health records, new registrations to the marriage file. They are built
    by the same builder (their own random stream, the same rates) and appended to the file."""
    ev = ctx.events
    n0 = len(ctx.base_p)
    if name in ("ps_hukou", "nhc_health") and len(ctx.persons) > n0:
        fresh = replace(ctx, fresh_rows=np.arange(n0, len(ctx.persons)), drop_date=ctx.drop_date + "new")
    elif name == "ca_marriage" and ev is not None and (ev["kind"] == "marriage").any():
        at = pd.Series(np.arange(len(ctx.persons)), index=ctx.persons["person_id"].to_numpy())
        m = ev[ev["kind"] == "marriage"]
        male = ctx.persons.set_index("person_id").loc[m["entity_id"], "gender"].to_numpy() == "1"
        pairs = (
            at[m["entity_id"][male]].to_numpy(),
            at[m["partner_id"][male]].to_numpy(),
            m["date"][male].to_numpy(),
        )
        fresh = replace(ctx, fresh_pairs=pairs, serial_start=len(truth) // 2, drop_date=ctx.drop_date + "new")
    else:
        return files, truth
    more_files, more = BUILDERS[name](fresh)
    path, extra = files[0], more_files[0]
    append_records(path, extra)
    extra.unlink()
    more["file"] = truth["file"].iloc[0] if len(truth) else f"{name}/{path.name}"
    more["row_number"] = more["row_number"] + len(truth)
    return files, pd.concat([truth, more], ignore_index=True)


def append_records(path: Path, extra: Path) -> None:
    """Append the data records of `extra` to the delivered file `path` (same source, same
    format): CSV without its header line, JSON lines as they are, XML <record>s before the
    closing root tag."""
    if path.suffix == ".csv":
        enc = "gbk" if path.name.startswith("hukou_") else "utf-8-sig"
        text = extra.read_bytes().decode(enc)
        body = text.split("\n", 1)[1]
        path.write_bytes(path.read_bytes() + body.encode("gbk" if enc == "gbk" else "utf-8"))
    elif path.suffix == ".jsonl":
        path.write_bytes(path.read_bytes() + extra.read_bytes())
    elif path.suffix == ".xml":
        head, tail = "<records>\n", "</records>\n"
        base = path.read_text("utf-8")
        more = extra.read_text("utf-8")
        records = more[more.index(head) + len(head) : more.rindex(tail)]
        path.write_bytes((base[: base.rindex(tail)] + records + tail).encode("utf-8"))
    else:
        raise ValueError(f"cannot append records to {path.name}")


def _events_truth(ev: pd.DataFrame) -> pd.DataFrame:
    out = ev.copy()
    out["date"] = _iso(pd.to_datetime(out["date"]))
    return out.astype(object)


#: Population columns that only feed the sources' variation (not part of the truth).
VARIATION_COLUMNS = (
    "name_variant",
    "name_traditional",
    "surname_variant",
    "name_no_separator",
    "old_household_region",
    "old_address",
    "old_phone",
)

ORG_VARIATION_COLUMNS = ("name_no_region", "name_form", "name_branch", "name_half_brackets")


def _iso(col: pd.Series) -> pd.Series:
    return col.dt.strftime("%Y-%m-%d").astype(object).where(col.notna(), None)


def _persons_truth(p: pd.DataFrame) -> pd.DataFrame:
    out = p.drop(columns=[c for c in VARIATION_COLUMNS if c in p.columns]).copy()
    for c in out.columns:
        if c != "alive":
            out[c] = out[c].astype(object) if c not in ("birth_date", "death_date") else _iso(out[c])
    return out


def _orgs_truth(o: pd.DataFrame) -> pd.DataFrame:
    out = o.drop(columns=["entity_type_name", "status_name", *ORG_VARIATION_COLUMNS]).copy()
    for c in out.columns:
        out[c] = _iso(out[c]) if c == "established_date" else out[c].astype(object)
    return out
