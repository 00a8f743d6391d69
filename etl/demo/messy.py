"""Row-level mess: format variation and defect injection at documented rates.

Defects are drawn as exact counts (round(rate x rows)) among the rows where the
defect makes sense, so the delivered rate is deterministic and testable. Codes
in one group (e.g. all resident-ID defects) are mutually exclusive per row.
"""

from __future__ import annotations

import numpy as np

from etl.demo import _text as T
from etl.demo._text import S, cat, num
from etl.quality import DEFECTS

#: defect code -> exclusivity group (at most one defect per group per row)
GROUP = {
    "id_fullwidth": "id",
    "id_lowercase_x": "id",
    "id_whitespace": "id",
    "id_15digit": "id",
    "id_bad_checksum": "id",
    "id_excel_destroyed": "id",
    "id_missing": "id",
    "id_birth_mismatch": "birth",
    "date_impossible": "birth",
    "id_gender_mismatch": "gender",
    "code_fullwidth": "code",
    "code_lowercase": "code",
    "code_bad_checksum": "code",
    "name_whitespace": "name",
    "name_variant": "name",
    "name_variant_traditional": "name",
    "name_variant_surname": "name",
    "name_variant_separator": "name",
    "name_separator_dot": "name",
    "org_name_variant_form": "org_name",
    "org_name_variant_branch": "org_name",
    "org_name_variant_region": "org_name",
    "org_name_bracket": "org_name",
    "code_missing": "code",
    "birth_swapped": "birth",
    "birth_off_by_one": "birth",
    "duplicate_record": "duplicate",
    "phone_format": "phone",
    "phone_changed": "phone",
    "moved": "address",
    "ragged_row": "row",
}
assert set(GROUP) <= set(DEFECTS), "every injected code must be in etl.quality.DEFECTS"


class Defects:
    """Which rows of one delivered file carry which defects."""

    def __init__(self, rng: np.random.Generator, n: int, rates: dict[str, float]):
        self.rng, self.n, self.rates = rng, n, rates
        self.masks: dict[str, np.ndarray] = {}
        self._taken: dict[str, np.ndarray] = {}

    def pick(self, code: str, eligible: np.ndarray | None = None) -> np.ndarray:
        group = GROUP[code]
        taken = self._taken.setdefault(group, np.zeros(self.n, dtype=bool))
        ok = ~taken if eligible is None else (eligible & ~taken)
        pool = np.flatnonzero(ok)
        k = min(round(self.rates.get(code, 0.0) * self.n), len(pool))
        mask = np.zeros(self.n, dtype=bool)
        if k:
            mask[pool[self.rng.permutation(len(pool))[:k]]] = True
        taken |= mask
        self.masks[code] = mask
        return mask

    def mark(self, code: str, mask: np.ndarray) -> None:
        """Record rows the builder chose itself (e.g. appended duplicates) as carrying `code`."""
        self.masks[code] = np.asarray(mask, dtype=bool)
        taken = self._taken.setdefault(GROUP[code], np.zeros(self.n, dtype=bool))
        taken |= self.masks[code]

    def get(self, code: str) -> np.ndarray:
        return self.masks.get(code, np.zeros(self.n, dtype=bool))

    def valid_id(self) -> np.ndarray:
        """Rows whose delivered resident ID is readable and checks out (no ID defect)."""
        return ~self.get("id_missing") & ~self.get("id_bad_checksum") & ~self.get("id_excel_destroyed")

    def codes(self) -> np.ndarray:
        out: np.ndarray = np.full(self.n, "", dtype=S)
        for code in sorted(self.masks):
            out = np.where(self.masks[code], cat(out, code, ","), out)
        return np.strings.rstrip(out.astype(S), ",")


# ---------------------------------------------------------------- formats
DATE_STYLES = ("iso", "cn", "slash", "compact", "dot")


def fmt_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Dates as text in per-row styles (indices into DATE_STYLES)."""
    ys, m2, d2, m1, d1 = num(y, 4), num(m, 2), num(d, 2), num(m), num(d)
    return np.select(
        [style == 0, style == 1, style == 2, style == 3],
        [
            cat(ys, "-", m2, "-", d2),
            cat(ys, "年", m1, "月", d1, "日"),
            cat(ys, "/", m1, "/", d1),
            cat(ys, m2, d2),
        ],
        cat(ys, ".", m2, ".", d2),
    ).astype(S)


def styles(rng: np.random.Generator, n: int, probs: dict[str, float]) -> np.ndarray:
    keys = [DATE_STYLES.index(k) for k in probs]
    p = np.asarray(list(probs.values()), dtype=float)
    return np.asarray(keys)[rng.choice(len(keys), size=n, p=p / p.sum())]


def fmt_dates(rng: np.random.Generator, dates: np.ndarray, probs: dict[str, float]) -> np.ndarray:
    from etl.demo.population import ymd_parts

    y, m, d = ymd_parts(dates)
    return fmt_ymd(y, m, d, styles(rng, len(dates), probs))


def impossible_dates(rng: np.random.Generator, dates: np.ndarray, probs: dict[str, float]) -> np.ndarray:
    """Same year, but 30 February / 31 April / 31 June."""
    from etl.demo.population import ymd_parts

    y, _, _ = ymd_parts(dates)
    pick = rng.integers(0, 3, len(dates))
    m = np.array([2, 4, 6])[pick]
    d = np.array([30, 31, 31])[pick]
    return fmt_ymd(y, m, d, styles(rng, len(dates), probs))


GENDER_VOCAB = {"code": ("1", "2"), "cn": ("男", "女"), "mf": ("M", "F"), "en": ("male", "female")}


def fmt_gender(rng: np.random.Generator, codes: np.ndarray, probs: dict[str, float]) -> np.ndarray:
    keys = list(probs)
    p = np.asarray(list(probs.values()), dtype=float)
    pick = rng.choice(len(keys), size=len(codes), p=p / p.sum())
    male = np.asarray(codes) == "1"
    out = np.empty(len(codes), dtype=object)
    for i, k in enumerate(keys):
        sel = pick == i
        out[sel] = np.where(male[sel], GENDER_VOCAB[k][0], GENDER_VOCAB[k][1])
    return out.astype(S)


# ---------------------------------------------------------------- identifier defects
def _apply(values: np.ndarray, mask: np.ndarray, fn) -> None:  # type: ignore[no-untyped-def]
    idx = np.flatnonzero(mask)
    if len(idx):
        values[idx] = np.asarray([fn(v) for v in values[idx].tolist()], dtype=S)


def mess_resident_ids(
    rng: np.random.Generator,
    ids: np.ndarray,
    dfx: Defects,
    *,
    zero_width: bool = True,
    eligible_15: np.ndarray | None = None,
    eligible_missing: np.ndarray | None = None,
) -> np.ndarray:
    """Inject the resident-ID defects configured in dfx.rates into a copy of ids.

    Order matters: the rarest, most specific defects are drawn first."""
    out = np.array(ids, dtype=S)
    ends_x = np.strings.endswith(out, "X")
    numeric = ~ends_x
    dfx.pick("id_lowercase_x", ends_x)
    dfx.pick("id_excel_destroyed", numeric)
    if eligible_15 is not None:
        dfx.pick("id_15digit", eligible_15)
    dfx.pick("id_missing", eligible_missing)  # before the others: its rate is the largest
    for code in ("id_bad_checksum", "id_fullwidth", "id_whitespace"):
        dfx.pick(code)
    _apply(out, dfx.get("id_lowercase_x"), lambda s: s[:-1] + "x")
    _apply(out, dfx.get("id_15digit"), lambda s: s[:6] + s[8:17])

    def typo(s: str) -> str:  # a sequence digit (pos 15/16) changed: always breaks the check
        p = 14 + int(rng.integers(0, 2))
        return s[:p] + str((int(s[p]) + int(rng.integers(1, 10))) % 10) + s[p + 1 :]

    _apply(out, dfx.get("id_bad_checksum"), typo)
    _apply(out, dfx.get("id_fullwidth"), lambda s: s.translate(T.FULLWIDTH))
    spaces = ["\u200b", " ", "\u3000"] if zero_width else [" ", "\u3000"]

    def blank(s: str) -> str:
        sp = spaces[int(rng.integers(0, len(spaces)))]
        return s[:6] + sp + s[6:14] + sp + s[14:] if rng.random() < 0.7 else " " + s + sp

    _apply(out, dfx.get("id_whitespace"), blank)
    out[dfx.get("id_missing")] = ""
    return out


def mess_credit_codes(
    rng: np.random.Generator, codes: np.ndarray, dfx: Defects, eligible_missing: np.ndarray | None = None
) -> np.ndarray:
    out = np.array(codes, dtype=S)
    has_letter = (
        np.asarray([any(c.isalpha() for c in s) for s in out.tolist()]) if len(out) else np.zeros(0, bool)
    )
    dfx.pick("code_lowercase", has_letter)
    dfx.pick("code_bad_checksum")
    dfx.pick("code_fullwidth")
    dfx.pick("code_missing", eligible_missing)
    from etl.demo.population import USCC_ALPHABET

    def typo(s: str) -> str:  # an organisation-code character (pos 9-16) changed
        p = 8 + int(rng.integers(0, 8))
        alt = USCC_ALPHABET[(USCC_ALPHABET.index(s[p]) + int(rng.integers(1, 31))) % 31]
        return s[:p] + alt + s[p + 1 :]

    _apply(out, dfx.get("code_lowercase"), str.lower)
    _apply(out, dfx.get("code_bad_checksum"), typo)
    _apply(out, dfx.get("code_fullwidth"), lambda s: s.translate(T.FULLWIDTH))
    out[dfx.get("code_missing")] = ""
    return out


#: Name variation codes, in the order they are drawn (the rarest eligibility first).
NAME_VARIANTS = (
    "name_variant_separator",
    "name_separator_dot",
    "name_variant_surname",
    "name_variant_traditional",
    "name_variant",
)


ORG_NAME_VARIANTS = (
    "org_name_bracket",
    "org_name_variant_branch",
    "org_name_variant_region",
    "org_name_variant_form",
)


def vary(
    names: np.ndarray, variants: dict[str, np.ndarray], codes: tuple[str, ...], dfx: Defects
) -> np.ndarray:
    """A copy of names where the rows drawn for each code (among those whose variant differs)
    carry that code's variant."""
    out = np.array(names, dtype=S)
    for code in codes:
        if code in variants:
            alt = np.asarray(variants[code], dtype=S)
            m = dfx.pick(code, alt != out)
            out[m] = alt[m]
    return out


def mess_names(
    rng: np.random.Generator,
    names: np.ndarray,
    variants: dict[str, np.ndarray] | None,
    dfx: Defects,
    *,
    zero_width: bool = True,
) -> np.ndarray:
    """Names with variation (`variants`: defect code of NAME_VARIANTS -> the variant of each
    row's name; a row is eligible where its variant differs) and whitespace defects."""
    out = vary(names, variants or {}, NAME_VARIANTS, dfx)
    spaces = ["\u200b", " ", "\u3000"] if zero_width else [" ", "\u3000"]
    dfx.pick("name_whitespace", np.strings.str_len(out) >= 2)
    _apply(
        out, dfx.get("name_whitespace"), lambda s: s[:1] + spaces[int(rng.integers(0, len(spaces)))] + s[1:]
    )
    return out


def separator_dot(names: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Minority names with the middle dot typed as '.' or '•' (normalization restores '·')."""
    dots = np.where(rng.random(len(names)) < 0.6, ".", "•").tolist()
    return np.asarray(
        [n.replace("·", d) for n, d in zip(np.asarray(names).tolist(), dots, strict=True)], dtype=S
    )


def mess_birth_without_id(
    rng: np.random.Generator, birth: np.ndarray, dfx: Defects, no_id: np.ndarray
) -> np.ndarray:
    """Birth dates of records without a resident ID: day and month swapped (days 1-12 only,
    day != month) or one day off. With an ID such a date would be a mismatch finding."""
    from etl.demo.population import ymd_parts

    y, m, d = ymd_parts(birth)
    swap = dfx.pick("birth_swapped", no_id & (d <= 12) & (d != m))
    off = dfx.pick("birth_off_by_one", no_id)
    out = birth.astype("datetime64[D]").copy()
    swapped = ((y[swap] - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (d[swap] - 1)).astype(
        "datetime64[D]"
    ) + (m[swap] - 1)
    out[swap] = swapped
    out[off] = out[off] + np.where(rng.random(int(off.sum())) < 0.5, -1, 1)
    return out


def mess_phones(
    rng: np.random.Generator, phones: np.ndarray, old: np.ndarray | None, dfx: Defects
) -> np.ndarray:
    out = np.array(phones, dtype=S)
    if old is not None:
        m = dfx.pick("phone_changed")
        out[m] = np.asarray(old, dtype=S)[m]
    dfx.pick("phone_format")
    forms = [
        lambda s: "+86 " + s,
        lambda s: f"{s[:3]}-{s[3:7]}-{s[7:]}",
        lambda s: f"{s[:3]} {s[3:7]} {s[7:]}",
        lambda s: "+86-" + s,
    ]
    _apply(out, dfx.get("phone_format"), lambda s: forms[int(rng.integers(0, len(forms)))](s))
    return out
