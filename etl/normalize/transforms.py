"""The registry of transforms a source contract may name (etl.contracts.KNOWN_TRANSFORMS).

Every transform: (values: pd.Series of delivered text) -> (normalized, reasons).
`reasons` is a string Series holding an etl.quality.REASONS code where a
non-empty value could not be normalized (the normalized value is null there)
and <NA> elsewhere; empty or whitespace-only input is null without a reason.
The output dtype is the pandas string dtype except: date/date_1904 ->
datetime64[ms], amount_cny/decimal -> float64, integer -> Int64, boolean -> boolean.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from etl.normalize import amounts, codes, dates, identifiers, phones, text
from etl.normalize._common import Result

Transform = Callable[[pd.Series], Result]

TRANSFORMS: dict[str, Transform] = {
    "resident_id": identifiers.resident_id,
    "credit_code": identifiers.credit_code,
    "date": dates.date,
    "date_1904": dates.date_1904,
    "gender": codes.gender,
    "marital_status": codes.marital_status,
    "ethnicity": codes.ethnicity,
    "name": text.name,
    "address": text.address,
    "phone": phones.phone,
    "amount_cny": amounts.amount_cny,
    "region": codes.region,
    "integer": amounts.integer,
    "decimal": amounts.decimal,
    "text": text.text,
    "boolean": codes.boolean,
    "entity_status": codes.entity_status,
    "entity_type": codes.entity_type,
}

#: The transform applied when a field declares none but its column is not a string.
DEFAULT_FOR_TYPE: dict[str, str] = {
    "integer": "integer",
    "decimal": "decimal",
    "date": "date",
    "timestamp": "date",
    "boolean": "boolean",
}
