"""Masking by kind, vectorized: 110105********002X, 张*明, 138****1234."""

from __future__ import annotations

import pandas as pd


def mask(values: pd.Series, kind: str) -> pd.Series:
    """Mask a string Series by the contract's mask kind; nulls stay null."""
    s = values.astype("string")
    if kind in ("none", "credit_code"):
        return s
    if kind == "resident_id":
        return s.str.slice(0, 6) + s.str.slice(6, -4).str.replace(r".", "*", regex=True) + s.str.slice(-4)
    if kind == "name":
        n = s.str.len()
        two = s.str.slice(0, 1) + "*"
        longer = s.str.slice(0, 1) + s.str.slice(1, -1).str.replace(r".", "*", regex=True) + s.str.slice(-1)
        return longer.where(n > 2, two.where(n == 2, "*")).where(s.notna())
    if kind == "phone":
        mobile = s.str.slice(0, 3) + "****" + s.str.slice(-4)
        return mobile.where(s.str.len() >= 8, "****").where(s.notna())
    if kind == "date":  # keep the year only
        return (s.str.slice(0, 4) + "-**-**").where(s.notna())
    if kind == "address":
        return (s.str.slice(0, 6) + "****").where(s.notna())
    return pd.Series("***", index=s.index, dtype="string").where(s.notna())
