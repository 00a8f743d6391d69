"""The `record_key` column: each source's own key of a delivered record.

A source YAML declares `record_key: [<delivered field>, ...]` (its record number
where it has one, else its natural key fields). The key is the delivered text of
those fields, trimmed of surrounding whitespace, joined with "|" when several.
A record with any key field empty gets a null key (a partial key identifies
nothing); the table's suite quarantines null and duplicate keys. The key is what
makes a record redelivered in a later batch the same source record, updated.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import STRING, null_strings, to_arrow

#: Between the fields of a compound record key.
SEPARATOR = "|"


def record_keys(raw: pd.DataFrame, fields: list[str]) -> pd.Series:
    """The record key of every raw row (position order, STRING dtype, RangeIndex).

    `raw` holds the delivered fields as text columns; a declared field the delivery
    lacks gives null keys (its absence is reported by extract's schema checks).
    """
    n = len(raw)
    parts: list[pa.Array] = []
    for name in fields:
        if name not in raw.columns:
            return pd.Series(null_strings(n))
        arr = pc.utf8_trim_whitespace(to_arrow(raw[name].reset_index(drop=True)))
        parts.append(pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr))
    if not parts:
        return pd.Series(null_strings(n))
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, SEPARATOR)
    return pd.Series(pd.array(joined, dtype=STRING))
