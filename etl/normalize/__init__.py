"""Normalization: raw department text -> typed staging rows in the shared schema.

Public API:
- normalize(raw, source, table) -> NormalizeResult(staged, errors, findings)
- combine: several delivered fields into one column by the source's declared rule
- consistency(staged) -> errors (resident ID vs birth date / gender)
- TRANSFORMS: name -> vectorized transform (Series[str] -> (values, reasons))
- identifiers.id_birth_date / id_gender: what a resident ID encodes
"""

from etl.normalize.core import ERROR_COLUMNS, PLACEHOLDERS, ROW, NormalizeResult, consistency, normalize
from etl.normalize.transforms import TRANSFORMS

__all__ = [
    "ERROR_COLUMNS",
    "PLACEHOLDERS",
    "ROW",
    "TRANSFORMS",
    "NormalizeResult",
    "consistency",
    "normalize",
]
