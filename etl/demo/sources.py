"""One builder per department source: population rows -> delivered file + truth rows.

Each builder returns the written paths and a truth DataFrame (one row per
delivered record, see etl/demo/README.md). Field names, encodings and layouts
follow schemas/sources/<source>.yml exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from etl.contracts import FieldMap
from etl.demo import messy as M
from etl.demo._text import S, cat, num, sarr
from etl.demo.population import DROP_DATE, REF_DATE, Regions, iso, weighted_sample, ymd_parts
from etl.normalize import reference

#: Defect rates per source: fraction of the delivered rows (exact counts, see messy.Defects).
RATES: dict[str, dict[str, float]] = {
    "ps_hukou": {
        "id_fullwidth": 0.004,
        "id_lowercase_x": 0.003,
        "id_whitespace": 0.004,
        "id_bad_checksum": 0.002,
        "id_missing": 0.005,
        "id_birth_mismatch": 0.001,
        "id_gender_mismatch": 0.001,
        "date_impossible": 0.0005,
        "name_whitespace": 0.003,
        "phone_format": 0.02,
        "phone_changed": 0.08,
        "ragged_row": 0.001,
    },
    "tax_registration": {
        "code_fullwidth": 0.005,
        "code_lowercase": 0.01,
        "code_bad_checksum": 0.003,
        "id_fullwidth": 0.005,
        "id_lowercase_x": 0.003,
        "id_whitespace": 0.005,
        "id_bad_checksum": 0.002,
        "id_missing": 0.045,  # individual businesses only: ~15 % of them
        "code_missing": 0.03,
        "name_whitespace": 0.005,
        "org_name_variant_form": 0.02,
        "org_name_variant_region": 0.02,
        "org_name_bracket": 0.01,
        "phone_format": 0.05,
        "ragged_row": 0.001,
    },
    "hrss_insurance": {
        "id_excel_destroyed": 0.02,
        "id_fullwidth": 0.005,
        "id_lowercase_x": 0.003,
        "id_whitespace": 0.005,
        "id_bad_checksum": 0.002,
        "id_missing": 0.01,
        "id_gender_mismatch": 0.002,
        "name_whitespace": 0.005,
        "name_variant": 0.015,
        "name_variant_traditional": 0.005,
        "name_variant_surname": 0.005,
        "name_variant_separator": 0.002,
        "name_separator_dot": 0.002,
        "org_name_variant_form": 0.02,
        "org_name_variant_branch": 0.03,
        "org_name_variant_region": 0.02,
        "org_name_bracket": 0.01,
        "phone_format": 0.03,
        "phone_changed": 0.05,
        "code_lowercase": 0.005,
        "code_bad_checksum": 0.002,
        "date_impossible": 0.001,
    },
    "nhc_health": {
        "id_fullwidth": 0.005,
        "id_lowercase_x": 0.003,
        "id_whitespace": 0.01,
        "id_bad_checksum": 0.002,
        "id_missing": 0.08,
        "id_birth_mismatch": 0.002,
        "id_gender_mismatch": 0.002,
        "date_impossible": 0.001,
        "birth_swapped": 0.004,
        "birth_off_by_one": 0.004,
        "name_whitespace": 0.005,
        "name_variant": 0.015,
        "name_variant_traditional": 0.008,
        "name_variant_surname": 0.005,
        "name_variant_separator": 0.003,
        "name_separator_dot": 0.002,
        "duplicate_record": 0.015,
        "moved": 0.08,
        "phone_format": 0.03,
        "phone_changed": 0.03,
    },
    "ca_marriage": {
        "id_fullwidth": 0.005,
        "id_lowercase_x": 0.003,
        "id_whitespace": 0.005,
        "id_bad_checksum": 0.002,
        "id_missing": 0.03,
        "id_birth_mismatch": 0.002,
        "id_gender_mismatch": 0.002,
        "date_impossible": 0.001,
        "birth_swapped": 0.003,
        "birth_off_by_one": 0.003,
        "name_whitespace": 0.005,
        "name_variant": 0.01,
        "name_variant_traditional": 0.003,
        "name_variant_surname": 0.003,
        "name_variant_separator": 0.002,
    },
    "samr_registry": {
        "code_fullwidth": 0.002,
        "code_lowercase": 0.005,
        "code_bad_checksum": 0.001,
        "id_fullwidth": 0.002,
        "id_whitespace": 0.002,
        "id_bad_checksum": 0.001,
        "id_missing": 0.005,
        "name_whitespace": 0.002,
        "date_impossible": 0.0005,
    },
    "ca_assistance": {
        "id_15digit": 0.25,
        "id_bad_checksum": 0.003,
        "id_missing": 0.12,
        "id_birth_mismatch": 0.003,
        "date_impossible": 0.002,
        "birth_swapped": 0.01,
        "birth_off_by_one": 0.01,
        "name_variant": 0.02,
        "name_variant_traditional": 0.01,
        "name_variant_surname": 0.01,
        "name_variant_separator": 0.005,
        "moved": 0.10,
        "phone_changed": 0.10,
    },
    "stats_indicators": {},
}

#: Share of the population (or organisations) each source delivers.
COVERAGE = {
    "ps_hukou": 0.99,
    "tax_registration": 0.85,
    "hrss_insurance_persons": 0.06,
    "nhc_health": 0.70,
    "ca_marriage_pairs": 0.02,
    "ca_assistance": 0.015,
}

PERSON_TRUTH = [
    "resident_id",
    "name",
    "gender",
    "birth_date",
    "ethnicity",
    "household_region",
    "address",
    "phone",
    "marital_status",
    "alive",
    "death_date",
]
ORG_TRUTH = [
    "credit_code",
    "name",
    "entity_type",
    "legal_rep_name",
    "legal_rep_id",
    "region",
    "address",
    "registered_capital",
    "established_date",
    "status",
    "industry",
    "phone",
]


@dataclass
class Ctx:
    landing: Path
    persons: pd.DataFrame
    orgs: pd.DataFrame
    regions: Regions
    seed: int
    drop_date: str = DROP_DATE  # YYYYMMDD in the file names: the delivery date
    #: The state at the base drop: which records a source holds is decided on it, so a later
    #: drop redelivers the same records (same keys) with the values of `persons` / `orgs`.
    base_persons: pd.DataFrame | None = None
    base_orgs: pd.DataFrame | None = None
    #: Events up to the drop (etl.demo.events.EVENT_COLUMNS); empty for the base drop.
    events: pd.DataFrame | None = None
    #: Set for the records events add to a source (newborns; marriage: registrations):
    #: the builder delivers exactly these instead of its own selection.
    fresh_rows: np.ndarray | None = None
    fresh_pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # husband, wife, date
    serial_start: int = 0  # marriage: registrations already numbered

    def rng(self, source: str) -> np.random.Generator:
        salt = [1] if self.fresh_rows is not None or self.fresh_pairs is not None else []
        return np.random.default_rng([self.seed, *source.encode(), *salt])

    @property
    def base_p(self) -> pd.DataFrame:
        return self.persons if self.base_persons is None else self.base_persons

    @property
    def base_o(self) -> pd.DataFrame:
        return self.orgs if self.base_orgs is None else self.base_orgs

    def folder(self, source: str) -> Path:
        p = self.landing / source
        p.mkdir(parents=True, exist_ok=True)
        return p


Built = tuple[list[Path], pd.DataFrame]


# ---------------------------------------------------------------- truth helpers
def _as_text(values: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.datetime64):
        out = np.asarray(iso(values), dtype=object)
        out[np.isnat(values)] = None
        return out
    return np.asarray(values, dtype=object) if values.dtype != bool else values


def _mapped(src: str) -> dict[str, str]:
    """The shared columns the source maps to (its contract's field map), each true value taken
    from the population column of the same name."""
    return {f.to: f.to for f in _fields(src) if f.to}


def truth(
    source: str,
    file: str,
    entity_id: np.ndarray,
    defects: np.ndarray,
    frame: pd.DataFrame,
    rows: np.ndarray,
    columns: dict[str, str],
    record_key: np.ndarray | None = None,
) -> pd.DataFrame:
    """columns: shared column -> population column; record_key: the source's own key of each
    delivered record, as staging's record_key column will hold it."""
    n = len(rows)
    data: dict[str, object] = {
        "source": np.full(n, source, dtype=object),
        "file": np.full(n, file, dtype=object),
        "row_number": np.arange(1, n + 1, dtype=np.int64),
        "entity_id": np.asarray(entity_id, dtype=object),
        "defects": np.asarray(defects, dtype=object),
    }
    if record_key is not None:
        data["record_key"] = np.asarray(record_key, dtype=object)
    for shared, col in columns.items():
        data[f"true_{shared}"] = _as_text(frame[col].to_numpy()[rows])
    return pd.DataFrame(data)


def _built(
    src: str, path: Path, frame: pd.DataFrame, rows: np.ndarray, dfx: M.Defects, record_key: np.ndarray
) -> Built:
    """The delivered file `path` of `src` and its truth: the `rows` of the population `frame`
    (persons or organisations) it carries, their defects, and every column the source maps."""
    entity = "person_id" if "person_id" in frame.columns else "org_id"
    return [path], truth(
        src,
        f"{src}/{path.name}",
        frame[entity].to_numpy()[rows],
        dfx.codes(),
        frame,
        rows,
        _mapped(src),
        record_key,
    )


def _gender(P: pd.DataFrame, rows: np.ndarray, dfx: M.Defects, has_id: np.ndarray) -> np.ndarray:
    """The gender codes of `rows`, swapped on the rows picked for id_gender_mismatch
    (among `has_id`: the ID's sex digit then disagrees)."""
    gender = P["gender"].to_numpy()[rows]
    gm = dfx.pick("id_gender_mismatch", has_id)
    return np.where(gm, np.where(gender == "1", "2", "1"), gender)


def _as_names(rng: np.random.Generator, codes: np.ndarray, code_list: str, share: float) -> np.ndarray:
    """Codes of `code_list` delivered as their names (schemas/reference) in about `share` of
    the rows, as the codes themselves in the others."""
    names = sarr(pd.Series(codes).map(reference.names(code_list)).to_numpy())
    return np.where(rng.random(len(codes)) < share, names, codes).astype(S)


def _name_variants(rng: np.random.Generator, P: pd.DataFrame, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per name-variation code (messy.NAME_VARIANTS) the variant of each row's name."""
    name = P["name"].to_numpy()[rows]
    return {
        "name_variant": P["name_variant"].to_numpy()[rows],
        "name_variant_traditional": P["name_traditional"].to_numpy()[rows],
        "name_variant_surname": P["surname_variant"].to_numpy()[rows],
        "name_variant_separator": P["name_no_separator"].to_numpy()[rows],
        "name_separator_dot": M.separator_dot(name, rng),
    }


def _org_name_variants(OR: pd.DataFrame, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per organisation-name variation code (messy.ORG_NAME_VARIANTS) the variant of each row."""
    return {
        "org_name_bracket": OR["name_half_brackets"].to_numpy()[rows],
        "org_name_variant_branch": OR["name_branch"].to_numpy()[rows],
        "org_name_variant_region": OR["name_no_region"].to_numpy()[rows],
        "org_name_variant_form": OR["name_form"].to_numpy()[rows],
    }


def _birth_texts(
    rng: np.random.Generator, birth: np.ndarray, dfx: M.Defects, probs: dict[str, float]
) -> np.ndarray:
    """Delivered birth dates: wrong dates on records without an ID (birth_swapped,
    birth_off_by_one), mismatches with a valid ID, impossible dates (the birth group)."""
    has_id = dfx.valid_id()
    bd = M.fmt_dates(rng, M.mess_birth_without_id(rng, birth, dfx, dfx.get("id_missing")), probs)
    mm = dfx.pick("id_birth_mismatch", has_id)
    bd[mm] = M.fmt_dates(rng, birth[mm] + rng.integers(1, 400, int(mm.sum())), probs)
    imp = dfx.pick("date_impossible")
    bd[imp] = M.impossible_dates(rng, birth[imp], probs)
    return bd


def _stale_residence(P: pd.DataFrame, rows: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(household region, address) as delivered: the old ones where `moved`."""
    region = sarr(P["household_region"].to_numpy()[rows])
    address = sarr(P["address"].to_numpy()[rows])
    region[moved] = sarr(P["old_household_region"].to_numpy()[rows][moved])
    address[moved] = sarr(P["old_address"].to_numpy()[rows][moved])
    return region, address


def _write_csv(
    ctx: Ctx, src: str, stem: str, cols: Sequence[np.ndarray], dfx: M.Defects, encoding: str
) -> Path:
    """`<stem>_<drop date>.csv` of `src`: the contract's header, then `cols` joined by commas,
    a remark cell too many on the rows picked for ragged_row."""
    ragged = dfx.pick("ragged_row")
    line = cols[0]
    for c in cols[1:]:
        line = cat(line, ",", c)
    if ragged.any():
        line = np.where(ragged, cat(line, ",", "备注：核查中"), line).astype(S)
    header = [f.name for f in _fields(src)]
    path = ctx.folder(src) / f"{stem}_{ctx.drop_date}.csv"
    path.write_bytes((",".join(header) + "\n" + "\n".join(line.tolist()) + "\n").encode(encoding))
    return path


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return np.sort(rng.permutation(n)[: round(n * share)])


# ---------------------------------------------------------------- ps_hukou (CSV, GBK)
def build_ps_hukou(ctx: Ctx) -> Built:
    src, rng, P = "ps_hukou", ctx.rng("ps_hukou"), ctx.persons
    rows = _pick(rng, len(ctx.base_p), COVERAGE[src]) if ctx.fresh_rows is None else ctx.fresh_rows
    n = len(rows)
    dfx = M.Defects(rng, n, RATES[src])
    birth = P["birth_date"].to_numpy().astype("datetime64[D]")[rows]
    ids = M.mess_resident_ids(rng, P["resident_id"].to_numpy()[rows], dfx, zero_width=False)
    has_id = dfx.valid_id()
    date_probs = {"compact": 0.7, "iso": 0.2, "cn": 0.1}
    bd = M.fmt_dates(rng, birth, date_probs)
    mm = dfx.pick("id_birth_mismatch", has_id)
    bd[mm] = M.fmt_dates(rng, birth[mm] + rng.integers(1, 400, int(mm.sum())), date_probs)
    imp = dfx.pick("date_impossible")
    bd[imp] = M.impossible_dates(rng, birth[imp], date_probs)
    gender = _gender(P, rows, dfx, has_id)
    gtxt = M.fmt_gender(rng, gender, {"cn": 0.9, "code": 0.1})
    eth_txt = _as_names(rng, P["ethnicity"].to_numpy()[rows], "ethnicity", 0.8)
    mar_txt = _as_names(rng, P["marital_status"].to_numpy()[rows], "marital_status", 0.8)
    names = M.mess_names(rng, P["name"].to_numpy()[rows], None, dfx, zero_width=False)
    phones = M.mess_phones(rng, P["phone"].to_numpy()[rows], P["old_phone"].to_numpy()[rows], dfx)
    key = cat("HJ", num(rows + 1, 10))  # 人员编号: the population system's person number
    cols = [
        ids,
        names,
        gtxt,
        bd,
        eth_txt,
        sarr(P["household_region"].to_numpy()[rows]),
        sarr(P["address"].to_numpy()[rows]),
        phones,
        mar_txt,
        key,
    ]
    path = _write_csv(ctx, src, "hukou", cols, dfx, "gbk")
    return _built(src, path, P, rows, dfx, key)


def _fields(source: str) -> list[FieldMap]:
    from etl.contracts import load_source

    return load_source(_SCHEMAS / "sources" / f"{source}.yml").fields


_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def set_schemas_dir(path: Path) -> None:
    global _SCHEMAS
    _SCHEMAS = path


# ---------------------------------------------------------------- tax_registration (CSV, UTF-8 BOM)


def _type_aliases() -> dict[str, list[str]]:
    """entity type code -> its delivered names (entity_type.csv aliases, registry's own first)."""
    df = reference.code_list("entity_type")
    return {c: a.split("|") for c, a in zip(df["code"], df["aliases"], strict=True)}


_STATUS_TAX = {"active": "正常", "revoked": "吊销", "cancelled": "注销", "moved_out": "迁出"}


def build_tax_registration(ctx: Ctx) -> Built:
    src, rng, OR = "tax_registration", ctx.rng("tax_registration"), ctx.orgs
    rows = _pick(rng, len(OR), COVERAGE[src])
    n = len(rows)
    dfx = M.Defects(rng, n, RATES[src])
    etype = OR["entity_type"].to_numpy()[rows]
    codes = M.mess_credit_codes(rng, OR["credit_code"].to_numpy()[rows], dfx)
    # individual businesses are often registered under the owner's name without an ID on file
    ids = M.mess_resident_ids(
        rng, OR["legal_rep_id"].to_numpy()[rows], dfx, eligible_missing=etype == "individual_business"
    )
    reps = M.mess_names(rng, OR["legal_rep_name"].to_numpy()[rows], None, dfx)
    org_names = M.vary(OR["name"].to_numpy()[rows], _org_name_variants(OR, rows), M.ORG_NAME_VARIANTS, dfx)
    alias_pick = rng.integers(0, 100, n)
    aliases = _type_aliases()
    type_txt = sarr([aliases[t][a % min(3, len(aliases[t]))] for t, a in zip(etype, alias_pick, strict=True)])
    phones = M.mess_phones(rng, OR["phone"].to_numpy()[rows], None, dfx)
    est = OR["established_date"].to_numpy().astype("datetime64[D]")[rows]
    reg_date = M.fmt_dates(
        rng, np.minimum(est + rng.integers(0, 60, n), REF_DATE - 1), {"slash": 0.5, "iso": 0.5}
    )
    status = sarr(pd.Series(OR["status"].to_numpy()[rows]).map(_STATUS_TAX).to_numpy())
    key = cat("SW", num(rows + 1, 9))  # 登记序号: the tax bureau's registration serial
    cols = [
        codes,
        org_names,
        reps,
        ids,
        type_txt,
        sarr(OR["address"].to_numpy()[rows]),
        phones,
        reg_date,
        status,
        key,
    ]
    path = _write_csv(ctx, src, "taxpayers", cols, dfx, "utf-8-sig")
    return _built(src, path, OR, rows, dfx, key)


# ---------------------------------------------------------------- hrss_insurance (Excel, 2-row header)
INSURANCE_TYPES = ["养老保险", "医疗保险", "失业保险", "工伤保险", "生育保险"]


def _employment(ctx: Ctx, rng: np.random.Generator) -> pd.DataFrame:
    P, OR = ctx.base_p, ctx.base_o
    age = (REF_DATE - P["birth_date"].to_numpy().astype("datetime64[D]")).astype(np.int64) / 365.25
    ok = (age >= 18) & (age < 60) & P["alive"].to_numpy()
    people = weighted_sample(rng, ok.astype(float), round(len(P) * COVERAGE["hrss_insurance_persons"]))
    emp_ok = (OR["status"].to_numpy() == "active") & (OR["entity_type"].to_numpy() != "individual_business")
    employers = np.flatnonzero(emp_ok)
    if len(employers) == 0:
        employers = np.arange(len(OR))
    emp = employers[rng.integers(0, len(employers), len(people))]
    k = 1 + (rng.random(len(people)) < 0.7) + (rng.random(len(people)) < 0.3)
    pr = np.repeat(people, k)
    er = np.repeat(emp, k)
    within = np.arange(len(pr)) - np.repeat(np.cumsum(k) - k, k)
    ins = np.asarray(INSURANCE_TYPES)[np.minimum(within, 4)]
    b18 = P["birth_date"].to_numpy().astype("datetime64[D]")[pr] + int(18 * 365.25) + 1
    lo = np.maximum(b18, OR["established_date"].to_numpy().astype("datetime64[D]")[er])
    lo = np.maximum(lo, np.datetime64("1995-01-01"))
    span = np.maximum((REF_DATE - 1 - lo).astype(np.int64), 1)
    start = (lo + (rng.random(len(pr)) * span).astype(np.int64)).astype("datetime64[D]")
    wage = (rng.lognormal(np.log(6000), 0.5, len(pr)) // 100 * 100).clip(2000, 60000).astype(np.int64)
    wage = np.repeat(wage[np.cumsum(k) - k], k)  # one contribution base per person
    return pd.DataFrame(
        {"p": pr, "o": er, "insurance_type": ins, "start_date": start, "monthly_wage": num(wage)}
    )


def build_hrss_insurance(ctx: Ctx) -> Built:
    import xlsxwriter

    src, rng, P, OR = "hrss_insurance", ctx.rng("hrss_insurance"), ctx.persons, ctx.orgs
    E = _employment(ctx, rng)
    n = len(E)
    pr, orr = E["p"].to_numpy(), E["o"].to_numpy()
    dfx = M.Defects(rng, n, RATES[src])
    ids = M.mess_resident_ids(rng, P["resident_id"].to_numpy()[pr], dfx)
    has_id = dfx.valid_id()
    gender = _gender(P, pr, dfx, has_id)
    gtxt = M.fmt_gender(rng, gender, {"cn": 0.8, "code": 0.2})
    names = M.mess_names(rng, P["name"].to_numpy()[pr], _name_variants(rng, P, pr), dfx)
    phones = M.mess_phones(rng, P["phone"].to_numpy()[pr], P["old_phone"].to_numpy()[pr], dfx)
    codes = M.mess_credit_codes(rng, OR["credit_code"].to_numpy()[orr], dfx)
    employer = M.vary(OR["name"].to_numpy()[orr], _org_name_variants(OR, orr), M.ORG_NAME_VARIANTS, dfx)
    start = E["start_date"].to_numpy().astype("datetime64[D]")
    serial = (start - np.datetime64("1899-12-30")).astype(np.int64)  # 1900 system, after 1900-03-01
    as_text = rng.random(n) < 0.1
    date_txt = M.fmt_dates(rng, start, {"iso": 0.6, "slash": 0.2, "cn": 0.2})
    imp = dfx.pick("date_impossible")
    date_txt[imp] = M.impossible_dates(rng, start[imp], {"iso": 1.0})
    as_text |= imp
    wage = E["monthly_wage"].to_numpy()
    wage_text = rng.random(n) < 0.3
    destroyed = dfx.get("id_excel_destroyed")

    path = ctx.folder(src) / f"insurance_{ctx.drop_date}.xlsx"
    wb = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    import datetime as _dt

    wb.set_properties(
        {"title": "社会保险参保人员花名册", "author": "社保经办", "created": _dt.datetime(2026, 11, 1)}
    )
    ws = wb.add_worksheet("参保人员")
    head = wb.add_format({"bold": True, "align": "center"})
    fields = [f.name for f in _fields(src)]
    groups = [f.split("/", 1) for f in fields]
    col = 0
    while col < len(groups):
        g = groups[col][0]
        end = col
        while end + 1 < len(groups) and groups[end + 1][0] == g:
            end += 1
        if end > col:
            ws.merge_range(0, col, 0, end, g, head)
        else:
            ws.write_string(0, col, g, head)
        col = end + 1
    for c, (_, leaf) in enumerate(groups):
        ws.write_string(1, c, leaf, head)
    key = cat("SB", num(pr + 1, 9))  # 个人编号: the social insurance person number
    text_cols = {  # delivered field -> cell text, for the fields written as strings
        "人员信息/姓名": names.tolist(),
        "人员信息/性别": gtxt.tolist(),
        "人员信息/联系电话": phones.tolist(),
        "人员信息/个人编号": key.tolist(),
        "单位信息/统一社会信用代码": codes.tolist(),
        "单位信息/单位名称": employer.tolist(),
        "参保信息/险种": E["insurance_type"].tolist(),
    }
    at = {f: c for c, f in enumerate(fields)}
    c_id, c_date, c_wage = at["人员信息/公民身份号码"], at["参保信息/参保日期"], at["参保信息/缴费基数"]
    id_l, date_l, wage_l = ids.tolist(), date_txt.tolist(), wage.tolist()
    true_ids = P["resident_id"].to_numpy()[pr]
    serial_l, as_text_l, wage_text_l, destroyed_l = (
        serial.tolist(),
        as_text.tolist(),
        wage_text.tolist(),
        destroyed.tolist(),
    )
    for i in range(n):  # xlsxwriter is row-at-a-time; rows stay ~10 % of persons
        r = i + 2
        if destroyed_l[i]:
            ws.write_number(r, c_id, float(int(true_ids[i][:15]) * 1000))  # Excel keeps 15 significant digits
        else:
            ws.write_string(r, c_id, id_l[i])
        for f, values in text_cols.items():
            ws.write_string(r, at[f], values[i])
        if as_text_l[i]:
            ws.write_string(r, c_date, date_l[i])
        else:
            ws.write_number(r, c_date, serial_l[i])
        if wage_text_l[i]:
            ws.write_string(r, c_wage, wage_l[i] + "元")
        else:
            ws.write_number(r, c_wage, int(wage_l[i]))
    wb.close()

    base = truth(
        src,
        f"{src}/{path.name}",
        P["person_id"].to_numpy()[pr],
        dfx.codes(),
        P,
        pr,
        {"resident_id": "resident_id", "name": "name", "gender": "gender", "phone": "phone"},
        cat(key, "|", E["insurance_type"].to_numpy().astype(S)),
    )
    base["true_employer_credit_code"] = OR["credit_code"].to_numpy()[orr].astype(object)
    base["true_employer_name"] = OR["name"].to_numpy()[orr].astype(object)
    base["true_insurance_type"] = E["insurance_type"].to_numpy().astype(object)
    base["true_start_date"] = _as_text(start)
    base["true_monthly_wage"] = wage.astype(object)
    return [path], base


# ---------------------------------------------------------------- nhc_health (NDJSON, nested)
def _js(values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    q = cat('"', values, '"')
    return q if present is None else np.where(present, q, "null").astype(S)


def build_nhc_health(ctx: Ctx) -> Built:
    src, rng, P = "nhc_health", ctx.rng("nhc_health"), ctx.persons
    alive_all = P["alive"].to_numpy()
    share = np.where(ctx.base_p["alive"].to_numpy(), COVERAGE[src], 0.95)
    rows = np.flatnonzero(rng.random(len(share)) < share) if ctx.fresh_rows is None else ctx.fresh_rows
    # persons registered twice (another clinic, before the ID was on file): appended records
    rate = RATES[src]["duplicate_record"] if ctx.fresh_rows is None else 0.0
    twice = np.sort(rng.permutation(rows)[: round(rate * len(rows) / (1 - rate))])
    record_id = np.concatenate([cat("HR", num(rows + 1, 9)), cat("HD", num(twice + 1, 9))]).astype(S)
    rows = np.concatenate([rows, twice])
    n = len(rows)
    dfx = M.Defects(rng, n, RATES[src])
    dfx.mark("duplicate_record", np.arange(n) >= n - len(twice))
    ids = M.mess_resident_ids(rng, P["resident_id"].to_numpy()[rows], dfx)
    has_id = dfx.valid_id()
    birth = P["birth_date"].to_numpy().astype("datetime64[D]")[rows]
    bd = _birth_texts(rng, birth, dfx, {"iso": 0.85, "dot": 0.1, "compact": 0.05})
    gender = _gender(P, rows, dfx, has_id)
    sex = M.fmt_gender(rng, gender, {"code": 0.6, "cn": 0.2, "mf": 0.1, "en": 0.1})
    names = M.mess_names(rng, P["name"].to_numpy()[rows], _name_variants(rng, P, rows), dfx)
    phones = M.mess_phones(rng, P["phone"].to_numpy()[rows], P["old_phone"].to_numpy()[rows], dfx)
    region, address = _stale_residence(P, rows, dfx.pick("moved"))
    alive = alive_all[rows]
    death = P["death_date"].to_numpy().astype("datetime64[D]")[rows]
    dd = M.fmt_dates(rng, np.where(alive, np.datetime64("2000-01-01"), death), {"iso": 1.0})
    vital = np.where(
        alive,
        np.where(rng.random(n) < 0.3, '{"alive":true,"death_date":null}', '{"alive":true}'),
        cat('{"alive":false,"death_date":"', dd, '"}'),
    ).astype(S)
    line = cat(
        '{"record_id":"',
        record_id,
        '","patient":{"id_card":',
        _js(ids, np.strings.str_len(ids) > 0),
        ',"name":',
        _js(names),
        ',"sex":',
        _js(sex),
        ',"birth_date":',
        _js(bd),
        ',"phone":',
        _js(phones),
        '},"address":{"region_code":',
        _js(region),
        ',"detail":',
        _js(address),
        '},"vital_status":',
        vital,
        "}",
    )
    path = ctx.folder(src) / f"health_{ctx.drop_date}.jsonl"
    path.write_bytes(("\n".join(line.tolist()) + "\n").encode("utf-8"))
    return _built(src, path, P, rows, dfx, record_id)


# ---------------------------------------------------------------- ca_marriage (XML)
def build_ca_marriage(ctx: Ctx) -> Built:
    rng = ctx.rng("ca_marriage")
    if ctx.fresh_pairs is not None:
        hm, wf, reg = ctx.fresh_pairs
        st = np.full(len(hm), "20")
        return _marriage_file(ctx, rng, hm, wf, st, reg.astype("datetime64[D]"))
    B = ctx.base_p  # registrations up to the base drop
    mar = B["marital_status"].to_numpy()
    male = B["gender"].to_numpy() == "1"
    birth = B["birth_date"].to_numpy().astype("datetime64[D]")
    parts_m, parts_f, kind = [], [], []
    for status in ("20", "40"):
        share = COVERAGE["ca_marriage_pairs"] * (1.0 if status == "20" else 0.5)
        men = np.flatnonzero((mar == status) & male)
        women = np.flatnonzero((mar == status) & ~male)
        k = min(round(len(B) * share / 2), len(men), len(women))
        men = np.sort(rng.permutation(men)[:k])
        women = np.sort(rng.permutation(women)[:k])
        men = men[np.argsort(birth[men], kind="stable")]
        women = women[np.argsort(birth[women], kind="stable")]
        parts_m.append(men)
        parts_f.append(women)
        kind.append(np.full(k, status))
    hm, wf, st = np.concatenate(parts_m), np.concatenate(parts_f), np.concatenate(kind)
    k = len(hm)
    lo = np.maximum(birth[hm] + 22 * 366, birth[wf] + 20 * 366)
    lo = np.maximum(lo, np.datetime64("1985-01-01"))
    span = np.maximum((REF_DATE - 1 - lo).astype(np.int64), 1)
    reg = (lo + (rng.random(k) * span).astype(np.int64)).astype("datetime64[D]")
    order = np.argsort(reg, kind="stable")
    return _marriage_file(ctx, rng, hm[order], wf[order], st[order], reg[order])


def _marriage_file(
    ctx: Ctx, rng: np.random.Generator, hm: np.ndarray, wf: np.ndarray, st: np.ndarray, reg: np.ndarray
) -> Built:
    """The XML of registrations (husband, wife, kind 20/40, date), numbered after ctx.serial_start."""
    src, P = "ca_marriage", ctx.persons
    birth = P["birth_date"].to_numpy().astype("datetime64[D]")
    k = len(hm)
    rows = np.empty(2 * k, dtype=np.int64)
    rows[0::2], rows[1::2] = hm, wf
    party_status = np.repeat(st, 2)
    regd = np.repeat(reg, 2)
    n = len(rows)
    y, _, _ = ymd_parts(reg)
    # the registering office: the husband's county when the record was made (keeps djbh stable)
    office_county = pd.Series(ctx.base_p["household_region"].to_numpy()[hm])
    djbh = np.repeat(
        cat(
            np.where(st == "20", "J", "L"),
            sarr(office_county.to_numpy()),
            "-",
            num(y),
            "-",
            num(np.arange(ctx.serial_start + 1, ctx.serial_start + k + 1), 6),
        ),
        2,
    )
    cnames = dict(zip(ctx.regions.code.astype(str), ctx.regions.county.tolist(), strict=True))
    office = np.repeat(sarr([cnames.get(c, "") + "民政局婚姻登记处" for c in office_county.tolist()]), 2)
    party = np.tile(sarr(["男方", "女方"]), k)  # 当事人类别: the husband is delivered first

    dfx = M.Defects(rng, n, RATES[src])
    ids = M.mess_resident_ids(rng, P["resident_id"].to_numpy()[rows], dfx)
    has_id = dfx.valid_id()
    bd = _birth_texts(rng, birth[rows], dfx, {"cn": 0.5, "iso": 0.5})
    gender = _gender(P, rows, dfx, has_id)
    xb = M.fmt_gender(rng, gender, {"cn": 1.0})
    names = M.mess_names(rng, P["name"].to_numpy()[rows], _name_variants(rng, P, rows), dfx)
    hyzk = _as_names(rng, party_status, "marital_status", 0.7)
    rec = cat(
        "  <record>\n    <djbh>",
        djbh,
        "</djbh>\n    <dsrlb>",
        party,
        "</dsrlb>\n    <sfzh>",
        ids,
        "</sfzh>\n    <xm>",
        names,
        "</xm>\n    <xb>",
        xb,
        "</xb>\n    <csrq>",
        bd,
        "</csrq>\n    <hyzk>",
        hyzk,
        "</hyzk>\n    <djrq>",
        iso(regd),
        "</djrq>\n    <djjg>",
        office,
        "</djjg>\n  </record>",
    )
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<records>\n' + "\n".join(rec.tolist()) + "\n</records>\n"
    path = ctx.folder(src) / f"marriage_{ctx.drop_date}.xml"
    path.write_bytes(text.encode("utf-8"))
    return _built(src, path, P, rows, dfx, cat(djbh, "|", party))


# ---------------------------------------------------------------- samr_registry (SQLite)
SAMR_COLUMNS = [
    "tyshxydm",
    "qymc",
    "qylx",
    "fddbr",
    "fddbr_sfzh",
    "zs_xzqh",
    "zs",
    "zczb",
    "clrq",
    "djzt",
    "hy",
    "updated_at",
]


def _capital_text(rng: np.random.Generator, cap: np.ndarray) -> np.ndarray:
    out = []
    pick = rng.integers(0, 4, len(cap))
    for c, p in zip(cap.tolist(), pick.tolist(), strict=True):
        c = int(c)
        if c >= 100_000_000 and p < 3:
            out.append(f"{c / 1e8:g}亿" + ("元" if p == 1 else ""))
        elif c % 10_000 == 0 and p < 3:
            out.append(f"{c // 10_000}万" + ("元" if p != 2 else ""))
        elif p == 3:
            out.append(f"{c}元")
        else:
            out.append(str(c))
    return sarr(out)


def registry_frame(ctx: Ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The enterprise_registry rows (text columns, ascending updated_at) and their truth."""
    src, rng, OR = "samr_registry", ctx.rng("samr_registry"), ctx.orgs
    rows = np.flatnonzero(
        np.isin(OR["entity_type"].to_numpy(), ["public_institution", "social_organisation"], invert=True)
    )
    est = OR["established_date"].to_numpy().astype("datetime64[D]")[rows]
    span = np.maximum((REF_DATE - 1 - est).astype(np.int64), 1)
    upd = est.astype("datetime64[s]") + (rng.random(len(rows)) * span * 86400).astype(np.int64)
    order = np.argsort(upd, kind="stable")
    rows, upd, est = rows[order], upd[order], est[order]
    n = len(rows)
    key = np.arange(1, n + 1)  # the registry's id, given in base updated_at order: stable
    upd = _updated_by_events(ctx, rows, upd)
    later = np.lexsort((key, upd))  # rows come in (updated_at, id) order, as extracted
    rows, upd, est, key = rows[later], upd[later], est[later], key[later]
    dfx = M.Defects(rng, n, RATES[src])
    codes = M.mess_credit_codes(rng, OR["credit_code"].to_numpy()[rows], dfx)
    ids = M.mess_resident_ids(rng, OR["legal_rep_id"].to_numpy()[rows], dfx)
    reps = M.mess_names(rng, OR["legal_rep_name"].to_numpy()[rows], None, dfx)
    probs = {"cn": 0.4, "iso": 0.4, "dot": 0.2}
    clrq = M.fmt_dates(rng, est, probs)
    imp = dfx.pick("date_impossible")
    clrq[imp] = M.impossible_dates(rng, est[imp], probs)
    etype = OR["entity_type"].to_numpy()[rows]
    aliases = _type_aliases()
    qylx = sarr(
        [
            aliases[t][0] if (t != "limited_company" or u < 0.7) else aliases[t][4]
            for t, u in zip(etype, rng.random(n).tolist(), strict=True)
        ]
    )
    frame = pd.DataFrame(
        {
            "id": key,
            "tyshxydm": codes,
            "qymc": OR["name"].to_numpy()[rows],
            "qylx": qylx,
            "fddbr": reps,
            "fddbr_sfzh": ids,
            "zs_xzqh": OR["region"].to_numpy()[rows],
            "zs": OR["address"].to_numpy()[rows],
            "zczb": _capital_text(rng, OR["registered_capital"].to_numpy()[rows]),
            "clrq": clrq,
            "djzt": OR["status_name"].to_numpy()[rows],
            "hy": OR["industry"].to_numpy()[rows],
            "updated_at": np.datetime_as_string(upd, unit="s").astype(S),
        }
    )
    frame["updated_at"] = frame["updated_at"].str.replace("T", " ")
    registry_id = frame.pop("id").to_numpy()
    frame = frame.astype(object).where(frame.astype(str) != "", None)  # empty -> NULL in the database
    frame.insert(0, "id", registry_id)
    t = truth(
        src,
        "enterprise_registry",
        OR["org_id"].to_numpy()[rows],
        dfx.codes(),
        OR,
        rows,
        _mapped(src),
        num(key),  # the registry's id
    )
    return frame, t


def _updated_by_events(ctx: Ctx, rows: np.ndarray, upd: np.ndarray) -> np.ndarray:
    """updated_at of registry rows, moved to the day of a deregistration where one happened."""
    ev = ctx.events
    if ev is None or not len(ev):
        return upd
    gone = ev[ev["kind"] == "deregistration"].set_index("entity_id")["date"]
    if gone.empty:  # none yet by this drop's date (pandas cannot map through an empty date series)
        return upd
    when = pd.Series(ctx.orgs["org_id"].to_numpy()[rows]).map(gone)
    hit = when.notna().to_numpy()
    out = upd.copy()
    secs = 9 * 3600 + (np.arange(len(rows))[hit] * 97) % 28800  # office hours, deterministic
    out[hit] = when[hit].to_numpy().astype("datetime64[D]").astype("datetime64[s]") + secs
    return out


def _table(meta, name: str = "enterprise_registry"):  # type: ignore[no-untyped-def]
    from sqlalchemy import Column, Integer, Table, Text

    return Table(
        name,
        meta,
        Column("id", Integer, primary_key=True, autoincrement=False),
        *[Column(c, Text) for c in SAMR_COLUMNS],
    )


def write_registry(url: str, rows: pd.DataFrame, table: str = "enterprise_registry") -> int:
    """(Re)create `table` in the database at SQLAlchemy `url` and insert rows (columns SAMR_COLUMNS,
    in order; id = rows["id"] where given, else 1..n). Returns the row count."""
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(url)
    try:
        meta = MetaData()
        t = _table(meta, table)
        with engine.begin() as conn:
            t.drop(conn, checkfirst=True)
            t.create(conn)
            records: list[dict[str, object]] = [
                {str(k): v for k, v in r.items()} for r in rows[SAMR_COLUMNS].to_dict("records")
            ]
            ids = rows["id"].tolist() if "id" in rows.columns else range(1, len(records) + 1)
            for i, r in zip(ids, records, strict=True):
                r["id"] = int(i)
            for lo in range(0, len(records), 5000):
                conn.execute(t.insert(), records[lo : lo + 5000])
    finally:
        engine.dispose()
    return len(rows)


def write_sqlite(path: Path, rows: pd.DataFrame) -> None:
    """Byte-stable SQLite file: fresh file, one transaction, rows in id order."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        cols = ", ".join(f"{c} TEXT" for c in SAMR_COLUMNS)
        con.execute(f"CREATE TABLE enterprise_registry (id INTEGER PRIMARY KEY, {cols})")
        ids = rows["id"].tolist() if "id" in rows.columns else list(range(1, len(rows) + 1))
        con.executemany(
            f"INSERT INTO enterprise_registry VALUES (?, {', '.join('?' * len(SAMR_COLUMNS))})",
            (
                (int(i), *r)
                for i, r in zip(ids, rows[SAMR_COLUMNS].itertuples(index=False, name=None), strict=True)
            ),
        )
        con.commit()
    finally:
        con.close()


def build_samr_registry(ctx: Ctx, sql_url: str | None = None) -> Built:
    frame, t = registry_frame(ctx)
    path = ctx.folder("samr_registry") / "registry.sqlite"
    write_sqlite(path, frame)
    if sql_url:
        write_registry(sql_url, frame)
    return [path], t


# ---------------------------------------------------------------- ca_assistance (fixed width, GB18030)
def _fixed(values: np.ndarray, width: int, right: bool = False) -> np.ndarray:
    v = np.strings.slice(np.asarray(values, dtype=S), 0, width)
    return np.strings.rjust(v, width) if right else np.strings.ljust(v, width)


def build_ca_assistance(ctx: Ctx) -> Built:
    src, rng, P = "ca_assistance", ctx.rng("ca_assistance"), ctx.persons
    alive = ctx.base_p["alive"].to_numpy()
    rows = np.sort(weighted_sample(rng, alive.astype(float), round(len(alive) * COVERAGE[src])))
    n = len(rows)
    dfx = M.Defects(rng, n, RATES[src])
    birth = P["birth_date"].to_numpy().astype("datetime64[D]")[rows]
    by, _, _ = ymd_parts(birth)
    ids = M.mess_resident_ids(
        rng, P["resident_id"].to_numpy()[rows], dfx, eligible_15=(by >= 1900) & (by <= 1999)
    )
    bd = _birth_texts(rng, birth, dfx, {"compact": 1.0})
    names = M.mess_names(rng, P["name"].to_numpy()[rows], _name_variants(rng, P, rows), dfx)
    region, address = _stale_residence(P, rows, dfx.pick("moved"))
    phones = M.mess_phones(rng, P["phone"].to_numpy()[rows], P["old_phone"].to_numpy()[rows], dfx)
    amount = cat(num(rng.integers(30, 120, n) * 10), ".00")
    key = cat("DB", num(rows + 1, 12))  # 救助档案编号: the assistance case number
    values = {
        "SFZH": ids,
        "XM": names,
        "XB": sarr(P["gender"].to_numpy()[rows]),
        "CSRQ": bd,
        "XZQH": region,
        "DZ": address,
        "LXDH": phones,
        "BZJE": amount,
        "JLBH": key,
    }
    line = None
    for f in sorted(_fields(src), key=lambda f: f.start or 0):
        cell = _fixed(values[f.name], f.width or 0, right=f.name == "BZJE")
        line = cell if line is None else cat(line, cell)
    path = ctx.folder(src) / f"assistance_{ctx.drop_date}.txt"
    path.write_bytes(("\n".join(line.tolist()) + "\n").encode("gb18030"))  # type: ignore[union-attr]
    return _built(src, path, P, rows, dfx, key)


# ---------------------------------------------------------------- stats_indicators (wide CSV)
INDICATORS = [  # name, unit, 2019 range, decimals
    ("地区生产总值", "亿元", (300.0, 30000.0), 2),
    ("常住人口", "万人", (20.0, 2000.0), 2),
    ("一般公共预算收入", "亿元", (15.0, 2500.0), 2),
    ("城镇居民人均可支配收入", "元", (28000.0, 85000.0), 0),
    ("社会消费品零售总额", "亿元", (100.0, 15000.0), 2),
]
YEARS = list(range(2019, 2025))
_GROWTH = {
    "地区生产总值": [1.0, 1.025, 1.085, 1.03, 1.052, 1.05],
    "常住人口": [1.0, 1.002, 1.0, 0.998, 0.997, 0.996],
    "一般公共预算收入": [1.0, 0.98, 1.10, 0.97, 1.065, 1.01],
    "城镇居民人均可支配收入": [1.0, 1.035, 1.082, 1.039, 1.051, 1.046],
    "社会消费品零售总额": [1.0, 0.96, 1.125, 0.998, 1.072, 1.035],
}


def build_stats_indicators(ctx: Ctx) -> Built:
    src, rng = "stats_indicators", ctx.rng("stats_indicators")
    pref = ctx.regions.prefectures
    r = len(pref)
    size = rng.random(r) ** 2  # a few big cities, many small ones
    recs, truths = [], []
    for ind, unit, (lo, hi), dec in INDICATORS:
        base = lo + (hi - lo) * (size * 0.8 + rng.random(r) * 0.2)
        level = base.copy()
        vals = []
        for g in _GROWTH[ind]:
            level = level * g * (1 + rng.normal(0, 0.01, r))
            vals.append(np.round(level, dec))
        for i in range(r):
            cells, tv = [], []
            for j, _y in enumerate(YEARS):
                u = rng.random()
                text = f"{vals[j][i]:.{dec}f}"
                if u < 0.03:
                    cells.append("")
                    tv.append("")
                elif u < 0.04:
                    cells.append("—")
                    tv.append("")
                else:
                    cells.append(text)
                    tv.append(text)
            code, name = str(pref.loc[i, "code"]), str(pref.loc[i, "name"])
            recs.append([code, name, ind, unit, *cells])
            truths.append([f"{code}:{ind}", code, name, ind, unit, *tv])
    recs.sort(key=lambda x: (x[0], [i for i, *_ in INDICATORS].index(x[2])))
    truths.sort(key=lambda x: (x[1], [i for i, *_ in INDICATORS].index(x[3])))
    header = [f.name for f in _fields(src)]
    text = ",".join(header) + "\n" + "\n".join(",".join(x) for x in recs) + "\n"
    path = ctx.folder(src) / f"indicators_{ctx.drop_date}.csv"
    path.write_bytes(text.encode("utf-8"))
    tf = pd.DataFrame(
        truths,
        columns=[
            "entity_id",
            "true_region_code",
            "true_region_name",
            "true_indicator_name",
            "true_unit",
            *[f"true_value_{y}" for y in YEARS],
        ],
    )
    n = len(tf)
    tf.insert(0, "source", src)
    tf.insert(1, "file", f"{src}/{path.name}")
    tf.insert(2, "row_number", np.arange(1, n + 1, dtype=np.int64))
    tf.insert(4, "defects", "")
    return [path], tf


BUILDERS = {
    "ps_hukou": build_ps_hukou,
    "tax_registration": build_tax_registration,
    "hrss_insurance": build_hrss_insurance,
    "nhc_health": build_nhc_health,
    "ca_marriage": build_ca_marriage,
    "ca_assistance": build_ca_assistance,
    "stats_indicators": build_stats_indicators,
}
