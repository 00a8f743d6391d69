"""The checks behind govbase's custom expectations, as plain vectorized functions.

Both validation engines call these: the Great Expectations metric providers in
etl.validate.expectations and the compiled engine in etl.validate.compiled, so
the two cannot disagree about what a valid identifier is. They reuse the
identifier code of etl.normalize. No Great Expectations import here.

Each returns a boolean Series aligned on its input; True means "as expected".
"""

from __future__ import annotations

import pandas as pd

from etl.normalize import identifiers


def valid_resident_id(column: pd.Series) -> pd.Series:
    """A normalized resident ID: 18 characters, GB 11643-1999 check character right,
    birth date real (null: False). Staged values are normalized, so un-normalized
    text (full-width digits, a lower-case x, a 15-digit number) is not valid here."""
    return pd.Series(identifiers.is_canonical_resident_id(column), index=column.index)


def valid_credit_code(column: pd.Series) -> pd.Series:
    """A normalized unified social credit code, GB 32100-2015 check character right (null: False)."""
    return pd.Series(identifiers.is_canonical_credit_code(column), index=column.index)


def id_agrees_with_birth_date(ids: pd.Series, births: pd.Series) -> pd.Series:
    """The birth date equals the one the ID encodes (compared as days); True where
    either side is unknown."""
    differ, _ = identifiers.birth_date_mismatch(ids.astype("string"), births)
    return pd.Series(~differ, index=ids.index)


def id_agrees_with_gender(ids: pd.Series, genders: pd.Series) -> pd.Series:
    """A male/female gender (1/2) agrees with the ID's sequence digit (odd = male);
    unknown (0), not stated (9) and missing values cannot disagree."""
    differ, _ = identifiers.gender_mismatch(ids.astype("string"), genders.astype("string"))
    return pd.Series(~differ, index=ids.index)
