"""Identity columns of the truth: which entity each delivered record is about, and whether it
carries a valid identifier for it (etl/demo/README.md, "Truth").

An evaluator of linkage needs, per delivered record, the entity it is about and whether
exact linkage was possible: a record whose identifier was left out or destroyed (missing,
mistyped so the check fails, or rounded by Excel) can only be linked probabilistically.
"""

from __future__ import annotations

import pandas as pd

#: Defects after which the delivered resident ID does not identify the person.
ID_LOST = ("id_missing", "id_bad_checksum", "id_excel_destroyed")
#: ... and the delivered credit code does not identify the organisation.
CODE_LOST = ("code_missing", "code_bad_checksum")


def _without(defects: pd.Series, codes: tuple[str, ...]) -> pd.Series:
    sets = defects.fillna("").str.split(",")
    return ~sets.apply(lambda xs: any(c in xs for c in codes)).astype(bool)


def identity_flags(truth: pd.DataFrame, orgs: pd.DataFrame) -> pd.DataFrame:
    """Add valid_id (and, for legal-entity and employment sources, the second entity of the
    record with its flag: legal_rep_entity_id / legal_rep_valid_id, employer_entity_id /
    employer_valid_id). Sources without a record_key (statistics) are returned unchanged.

    In legal-entity sources the resident-ID defects hit the legal representative's ID and
    the code defects the organisation's credit code; in employment the reverse roles
    (person's ID, employer's code)."""
    if "record_key" not in truth.columns:
        return truth
    out = truth.copy()
    d = out["defects"]
    if "true_credit_code" in out.columns:  # legal_entity: the record is about an organisation
        out["valid_id"] = _without(d, CODE_LOST)
        rep = orgs.set_index("org_id")["legal_rep_person"]
        out["legal_rep_entity_id"] = out["entity_id"].map(rep).astype(object)
        out["legal_rep_valid_id"] = _without(d, ID_LOST)
    else:
        out["valid_id"] = _without(d, ID_LOST)
    if "true_employer_credit_code" in out.columns:
        by_code = orgs.set_index("credit_code")["org_id"]
        out["employer_entity_id"] = out["true_employer_credit_code"].map(by_code).astype(object)
        out["employer_valid_id"] = _without(d, CODE_LOST)
    return out


#: (role, entity type, entity column, flag column) of each entity a record names.
ROLES = (
    ("record", None, "entity_id", "valid_id"),
    ("legal_rep", "person", "legal_rep_entity_id", "legal_rep_valid_id"),
    ("employer", "organisation", "employer_entity_id", "employer_valid_id"),
)


def link_rows(truth: pd.DataFrame) -> pd.DataFrame:
    """One row per (delivered record, entity it names): source, file, row_number,
    record_key, role (record / legal_rep / employer), entity_type (person /
    organisation), entity_id, valid_id. Empty for sources without a record_key."""
    cols = ["source", "file", "row_number", "record_key", "role", "entity_type", "entity_id", "valid_id"]
    if "record_key" not in truth.columns:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    record_type = "organisation" if "legal_rep_entity_id" in truth.columns else "person"
    parts = []
    for role, etype, ecol, vcol in ROLES:
        if ecol not in truth.columns:
            continue
        part = truth[["source", "file", "row_number", "record_key"]].copy()
        part["role"] = role
        part["entity_type"] = etype or record_type
        part["entity_id"] = truth[ecol].to_numpy()
        part["valid_id"] = truth[vcol].to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[cols]
