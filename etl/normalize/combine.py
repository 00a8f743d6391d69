"""Several delivered fields into one column, by the source's declared rule (contracts.Combine).

Pure functions over aligned Series (one per field, in declared order, index 0..n-1):
- `join(parts, failed, separator)`: the non-empty parts joined; null where every part
  is empty or where any part's own transform failed (that part has its error);
- `date_parts(parts, failed)`: year, month, day as "Y年M月D日" for the date transform;
  null where all three are empty, a reason where only some are;
- `first_non_empty(values, ...)`: the first value, and a `field_disagreement` finding
  per later value that differs (its values masked by the column's mask kind).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.normalize._common import STRING, null_strings
from etl.publish.masking import mask

#: finding code of a later field holding another value than the one kept
DISAGREEMENT = "field_disagreement"


def _present(s: pd.Series) -> np.ndarray:
    text = s.astype(STRING)
    return (text.notna() & (text.str.strip().str.len() > 0)).to_numpy(dtype=bool, na_value=False)


def join(parts: list[pd.Series], failed: list[pd.Series], separator: str) -> pd.Series:
    """Non-empty parts joined with `separator`, in order (see module docstring)."""
    # pyarrow's binary_join_element_wise(null_handling="skip") drops trailing rows whose
    # parts are all null (pyarrow 26): joined pairwise in pandas instead
    n = len(parts[0])
    out = pd.Series(null_strings(n))
    for p in parts:
        text = p.reset_index(drop=True).astype(STRING)
        text = text.where(pd.Series(_present(p)))
        both = (out.notna() & text.notna()).to_numpy(dtype=bool)
        out = out.where(out.notna(), text)
        out = out.mask(pd.Series(both), out + separator + text)
    broken = np.logical_or.reduce([f.notna().to_numpy(dtype=bool) for f in failed], initial=False)
    return out.mask(pd.Series(np.broadcast_to(broken, n)))


def delivered(raw_parts: list[pd.Series]) -> pd.Series:
    """The delivered parts side by side, "|"-separated (empty for a missing part): the
    raw value an error about the combined value shows."""
    out = raw_parts[0].astype(STRING).fillna("")
    for p in raw_parts[1:]:
        out = out + "|" + p.astype(STRING).fillna("")
    return out


def date_parts(parts: list[pd.Series], failed: list[pd.Series]) -> tuple[pd.Series, pd.Series]:
    """(text "Y年M月D日", reason) from year, month and day fields."""
    year, month, day = (p.astype(STRING).str.strip() for p in parts)
    present = np.vstack([_present(p) for p in parts])
    broken = np.logical_or.reduce([f.notna().to_numpy(dtype=bool) for f in failed])
    whole = present.all(axis=0) & ~broken
    some = present.any(axis=0) & ~whole & ~broken
    text = (year + "年" + month + "月" + day + "日").where(pd.Series(whole))
    reasons = pd.Series(null_strings(len(year)))
    reasons[some] = "invalid_date"
    return text.astype(STRING), reasons


def first_non_empty(
    values: list[pd.Series], names: list[str], mask_kind: str
) -> tuple[pd.Series, list[tuple[pd.Series, pd.Series, pd.Series]]]:
    """The first non-null value per row, and per field that lost: (reasons, masked value,
    detail), each full length and null where the field agrees with the kept value or is
    empty. Values are compared as the column's type (a date as YYYY-MM-DD)."""
    kept = values[0]
    kept_from = np.zeros(len(kept), dtype=np.int64)
    for k, v in enumerate(values[1:], start=1):
        take = kept.isna().to_numpy(dtype=bool) & v.notna().to_numpy(dtype=bool)
        kept = kept.mask(pd.Series(take, index=kept.index), v)
        kept_from[take] = k
    kept_text = _as_text(kept)
    findings = []
    for k, v in enumerate(values):
        text = _as_text(v)
        differs = (
            v.notna().to_numpy(dtype=bool)
            & (kept_from != k)
            & (text != kept_text).to_numpy(dtype=bool, na_value=False)
        )
        if not differs.any():
            continue
        pos = np.flatnonzero(differs)
        shown = pd.Series(null_strings(len(v)), index=v.index)
        shown.iloc[pos] = mask(text.iloc[pos], mask_kind).to_numpy(dtype=object)
        shown_kept = mask(kept_text.iloc[pos], mask_kind).tolist()
        detail = pd.Series(null_strings(len(v)), index=v.index)
        detail.iloc[pos] = [
            f"{names[k]}={o} differs from {names[j]}={s} (kept)"
            for o, j, s in zip(shown.iloc[pos].tolist(), kept_from[pos].tolist(), shown_kept, strict=True)
        ]
        reasons = pd.Series(null_strings(len(v)), index=v.index)
        reasons.iloc[pos] = DISAGREEMENT
        findings.append((reasons, shown, detail))
    return kept, findings


def _as_text(v: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(v.dtype):
        return v.dt.strftime("%Y-%m-%d").astype(STRING)
    return v.astype(STRING)
