"""The shared population: persons and organisations, generated vectorized.

Every source is a (messy) view of these two tables; they are also written to
landing/_truth/ as the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.demo import _text as T
from etl.demo._text import S, cat, num
from etl.normalize import reference

#: The reference date of the demo drop: ages, deaths and dates are "as of" it.
REF_DATE = np.datetime64("2026-11-01")
DROP_DATE = "20261101"

RIC_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
RIC_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_ASCII = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)  # GB 11714

#: Demo shares of the codes of schemas/reference (a code the list lacks is never drawn).
ENTITY_TYPE_SHARES = {
    "limited_company": 0.55,
    "joint_stock": 0.03,
    "sole_proprietorship": 0.04,
    "partnership": 0.03,
    "individual_business": 0.30,
    "public_institution": 0.03,
    "social_organisation": 0.02,
}
#: Delivered status names (spellings of entity_status.csv) and their shares.
STATUS_SHARES = {"存续": 0.62, "在业": 0.18, "吊销": 0.07, "注销": 0.11, "迁出": 0.02}
ETHNICITY_SHARES = {  # GB/T 3304 code -> share; the remaining groups share what is left
    "01": 0.913,
    "08": 0.014,
    "05": 0.008,
    "03": 0.008,
    "06": 0.0078,
    "11": 0.0075,
    "07": 0.0071,
    "15": 0.0068,
    "04": 0.0050,
    "02": 0.0045,
    "12": 0.0025,
    "09": 0.0025,
    "13": 0.0024,
    "14": 0.0015,
    "10": 0.0013,
    "16": 0.0012,
    "19": 0.0011,
    "17": 0.0011,
    "18": 0.0009,
}


# ---------------------------------------------------------------- identifiers
def ric_check_chars(body17: np.ndarray) -> np.ndarray:
    """(N,17) digit array -> (N,) ASCII check char codes (GB 11643)."""
    return RIC_CHECK[(body17.astype(np.int64) @ RIC_WEIGHTS) % 11]


def resident_ids(addr: np.ndarray, ymd: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """18-char resident IDs from int arrays address code, YYYYMMDD and sequence."""
    n = len(addr)
    body = np.empty((n, 17), dtype=np.int64)
    for pos, (val, width) in enumerate(((addr, 6), (ymd, 8), (seq, 3))):
        start = (0, 6, 14)[pos]
        for k in range(width):
            body[:, start + k] = (val // 10 ** (width - 1 - k)) % 10
    codes = np.empty((n, 18), dtype=np.uint8)
    codes[:, :17] = body + 48
    codes[:, 17] = ric_check_chars(body)
    return T.ascii_rows(codes)


def uscc_check_index(idx17: np.ndarray) -> np.ndarray:
    """(N,17) alphabet indices -> check indices (GB 32100)."""
    return (31 - (idx17.astype(np.int64) @ USCC_WEIGHTS) % 31) % 31


def credit_codes(prefix2: np.ndarray, region: np.ndarray, org8: np.ndarray) -> np.ndarray:
    """USCC from 2-digit authority+type ints, 6-digit region ints and (N,8) alphabet indices of
    the organisation code body; the GB 11714 organisation check char is computed too."""
    n = len(region)
    idx = np.empty((n, 18), dtype=np.int64)
    idx[:, 0] = prefix2 // 10
    idx[:, 1] = prefix2 % 10
    for k in range(6):
        idx[:, 2 + k] = (region // 10 ** (5 - k)) % 10
    idx[:, 8:16] = org8
    # GB 11714: value of a char is its digit or letter ordinal (A=10 ... Z=35)
    ascii8 = _USCC_ASCII[org8]
    values = np.where(ascii8 >= 65, ascii8.astype(np.int64) - 55, ascii8.astype(np.int64) - 48)
    c9 = 11 - (values @ ORG_WEIGHTS) % 11
    org_check = np.where(c9 == 11, 0, np.where(c9 == 10, USCC_ALPHABET.index("X"), c9))
    idx[:, 16] = org_check
    idx[:, 17] = uscc_check_index(idx[:, :17])
    return T.ascii_rows(_USCC_ASCII[idx])


# ---------------------------------------------------------------- helpers
def weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to weights (O(n))."""
    k = min(k, int((weights > 0).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    keys = rng.exponential(size=len(weights)) / np.where(weights > 0, weights, np.nan)
    keys = np.nan_to_num(keys, nan=np.inf)
    return np.sort(np.argpartition(keys, k - 1)[:k])


def ymd_parts(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = dates.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y, m, day


def iso(dates: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(dates.astype("datetime64[D]"), unit="D").astype(S)


@dataclass
class Regions:
    """Current, non-placeholder county codes with their address prefix."""

    code: np.ndarray  # int
    valid_from: np.ndarray
    prefix: np.ndarray  # 省+市+县 names (StringDType)
    city: np.ndarray  # short city name for organisation names
    county: np.ndarray
    prefectures: pd.DataFrame  # prefecture-level places for statistics

    @classmethod
    def from_reference(cls, ref: pd.DataFrame) -> Regions:
        mainland = ~ref["code"].str[:2].isin(["71", "81", "82"]) & (ref["code"] != "350527")  # 金门县
        c = ref[mainland & (ref["level"] == "county") & ~ref["placeholder"]].copy()
        c = c.sort_values(["valid_from", "code"], kind="stable")
        placeholder_pref = ~c["prefecture"].isin(set(ref.loc[~ref["placeholder"], "name"])) | (
            c["prefecture"] == c["province"]
        )
        pref = np.where(placeholder_pref | c["prefecture"].isin(["市辖区", "县"]), "", c["prefecture"])
        city_src = np.where(pref == "", c["province"], pref)
        peoples = "|".join(n[:-1] for n in reference.names("ethnicity").values() if n.endswith("族"))
        city = pd.Series(city_src, dtype=str).str.replace(r"(市|地区|盟|省)$", "", regex=True)
        city = city.str.replace(rf"((?:{peoples})族?)*(自治州|自治区)$", "", regex=True)
        prefs = ref[mainland & (ref["level"] == "prefecture") & ~ref["placeholder"]]
        prefs = prefs[prefs["name"].str.contains(r"(?:市|州|盟|地区)$")]
        return cls(
            code=c["code"].astype(np.int64).to_numpy(),
            valid_from=c["valid_from"].astype(np.int64).to_numpy(),
            prefix=T.sarr((c["province"] + pd.Series(pref, index=c.index) + c["name"]).to_numpy()),
            city=T.sarr(city.to_numpy()),
            county=T.sarr(c["name"].to_numpy()),
            prefectures=prefs[["code", "name", "province"]].reset_index(drop=True),
        )

    def pick_for_years(self, rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
        """A county index valid in each birth year (stdnum checks code validity at birth)."""
        k = np.searchsorted(self.valid_from, years, side="right")
        return np.minimum((rng.random(len(years)) * k).astype(np.int64), np.maximum(k - 1, 0))


def street_addresses(rng: np.random.Generator, prefix: np.ndarray, *, with_room: bool = True) -> np.ndarray:
    n = len(prefix)
    street = T.sarr(T.STREETS)[rng.integers(0, len(T.STREETS), n)]
    suffix = T.sarr(T.STREET_SUFFIX)[rng.integers(0, len(T.STREET_SUFFIX), n)]
    no = num(rng.integers(1, 400, n))
    out = cat(prefix, street, suffix, no, "号")
    if with_room:
        room = num(rng.integers(1, 28, n) * 100 + rng.integers(1, 5, n))
        bld = rng.random(n) < 0.6
        tail = np.where(
            bld,
            cat(num(rng.integers(1, 30, n)), "栋", num(rng.integers(1, 5, n)), "单元", room, "室"),
            cat(room, "室"),
        )
        out = cat(out, T.sarr(tail))
    return out


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    pre = np.asarray(T.PHONE_PREFIXES, dtype=np.int64)[rng.integers(0, len(T.PHONE_PREFIXES), n)]
    return num(pre * 100_000_000 + rng.integers(0, 100_000_000, n), 11)


# ---------------------------------------------------------------- persons
def _birth_year_weights() -> tuple[np.ndarray, np.ndarray]:
    years = np.arange(1930, 2025)
    knots_x = [1930, 1940, 1950, 1958, 1960, 1962, 1970, 1976, 1985, 1990, 1995, 2000, 2010, 2016, 2018, 2024]
    knots_y = [0.2, 0.5, 0.9, 1.2, 0.8, 1.7, 1.8, 1.3, 1.6, 1.7, 1.2, 1.0, 1.0, 1.2, 1.0, 0.55]
    w = np.interp(years, knots_x, knots_y)
    return years, w / w.sum()


#: Shares of the population with a look-alike: a twin (second-born of a pair: same birth
#: date, household and address, another given name; ~1 % of births in China are twins) and
#: a namesake (same common name and birth date as another person, elsewhere).
TWIN_SHARE = 0.01
NAMESAKE_SHARE = 0.005
#: Share who moved county: the household register has the new region and address, some
#: departments still the old ones (`old_household_region`, `old_address`).
MOVED_COUNTY_SHARE = 0.05


def _look_alikes(rng: np.random.Generator, n: int, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(twin_of, namesake_of): index of the look-alike partner per person, -1 for none.
    Partners are never look-alikes themselves; namesakes share the gender."""
    order = rng.permutation(n)
    k_twin, k_same = round(n * TWIN_SHARE), round(n * NAMESAKE_SHARE)
    twin_of = np.full(n, -1, dtype=np.int64)
    namesake_of = np.full(n, -1, dtype=np.int64)
    twins, twin_partner = order[:k_twin], order[k_twin : 2 * k_twin]
    twin_of[twins] = twin_partner
    rest = order[2 * k_twin :]
    same, pool = rest[: 2 * k_same], rest[2 * k_same :]
    for i in same[:k_same]:
        cands = pool[male[pool] == male[i]]
        if len(cands):
            namesake_of[i] = cands[int(rng.integers(0, len(cands)))]
    return twin_of, namesake_of


def _partner_ids(pid: np.ndarray, partner: np.ndarray) -> np.ndarray:
    out = np.full(len(pid), None, dtype=object)
    has = partner >= 0
    out[has] = pid[partner[has]].astype(object)
    return out


def _given_variant(given_last: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """A look-alike of the last given-name character where the table has one, else the
    generic homophone/traditional pair."""
    alike = np.array([T.LOOKALIKE_GIVEN.get(c, "") for c in given_last.tolist()], dtype=S)
    return np.where(np.strings.str_len(alike) > 0, alike, fallback).astype(S)


def _name_forms(
    rng: np.random.Generator,
    name: np.ndarray,
    name_variant: np.ndarray,
    sur: np.ndarray,
    ethnicity: np.ndarray,
    tw: np.ndarray,
    twin_of: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give Uyghur and Kazakh persons given·father names (in place in `name`, `name_variant`)
    and return the other forms departments write: (no separator, traditional, surname variant)."""
    n = len(name)
    sep = np.flatnonzero(np.isin(ethnicity, T.SEPARATOR_NAME_GROUPS))
    given = T.sarr(T.MINORITY_GIVEN)[rng.integers(0, len(T.MINORITY_GIVEN), n)]
    father = T.sarr(T.MINORITY_FATHER)[rng.integers(0, len(T.MINORITY_FATHER), n)]
    father[tw] = father[twin_of[tw]]  # twins: one father's name
    clash = tw[given[tw] == given[twin_of[tw]]]
    nxt = [(T.MINORITY_GIVEN.index(g) + 1) % len(T.MINORITY_GIVEN) for g in given[clash].tolist()]
    given[clash] = T.sarr(T.MINORITY_GIVEN)[np.asarray(nxt, dtype=np.int64)]
    name[sep] = name_variant[sep] = cat(given[sep], "·", father[sep])
    name_no_separator = np.strings.replace(name, "·", "").astype(S)
    name_traditional = T.sarr(T.traditional(name.tolist()))
    sur_alt = np.array([T.SURNAME_VARIANTS.get(c, "") for c in sur.tolist()], dtype=S)
    surname_variant = np.where(
        (np.strings.str_len(sur_alt) > 0) & (np.strings.str_len(sur) == 1),
        cat(sur_alt, np.strings.slice(name, 1, None)),
        name,
    ).astype(S)
    surname_variant[sep] = name[sep]
    return name_no_separator, name_traditional, surname_variant


def _unique_resident_ids(
    rng: np.random.Generator, addr_code: np.ndarray, by: np.ndarray, birth: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """GB 11643 IDs, unique: the sequence is bumped within (address, birth, gender) groups."""
    n = len(addr_code)
    _, bm, bd = ymd_parts(birth)
    ymd = by * 10000 + bm * 100 + bd
    seq = rng.integers(0, 500, n) * 2 + male.astype(np.int64)
    seq = np.where(seq == 0, 2, seq)
    # uniqueness: bump the sequence within (address, birth, gender) groups, keeping parity
    key = pd.DataFrame({"a": addr_code, "d": ymd, "s": seq})
    dup = key.groupby(["a", "d", "s"], sort=False).cumcount().to_numpy()
    while dup.any():  # odd sequences stay odd (1..999), even stay even (2..998)
        seq = np.where(male, (seq - 1 + 2 * dup) % 1000 + 1, (seq - 2 + 2 * dup) % 998 + 2)
        key["s"] = seq
        dup = key.groupby(["a", "d", "s"], sort=False).cumcount().to_numpy()
    return resident_ids(addr_code, ymd, seq)


def _residence(
    rng: np.random.Generator, regions: Regions, cidx: np.ndarray, addr_code: np.ndarray, twin_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(address, old address, household region); twins share the first twin's address."""
    n = len(cidx)
    tw = np.flatnonzero(twin_of >= 0)
    prefix = regions.prefix[cidx]
    address = street_addresses(rng, prefix)
    address[tw] = address[twin_of[tw]]
    old_address = street_addresses(rng, prefix)
    # moved county: the register's region and address are the new ones; the old county
    # (whose code the resident ID keeps, as it encodes the place of first registration) and
    # an address there are what a department not yet told still holds
    in_pair = twin_of >= 0
    in_pair[twin_of[tw]] = True
    moved = weighted_sample(rng, (~in_pair).astype(float), round(n * MOVED_COUNTY_SHARE))
    new_cidx = rng.integers(0, len(regions.code), len(moved))
    region = addr_code.copy()
    region[moved] = regions.code[new_cidx]
    old_address[moved] = address[moved]
    address[moved] = street_addresses(rng, regions.prefix[new_cidx])
    return address, old_address, region


def _vital(
    rng: np.random.Generator, birth: np.ndarray, male: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alive, death date, marital status) on REF_DATE."""
    n = len(birth)
    age = (REF_DATE - birth).astype(np.int64) / 365.25
    # deaths: ~1.5 %, strongly age dependent
    dw = np.exp(age / 9.0)
    dead_idx = weighted_sample(rng, dw, round(n * 0.015))
    alive = np.ones(n, dtype=bool)
    alive[dead_idx] = False
    lo = np.maximum(birth, np.datetime64("2005-01-01"))
    span = (REF_DATE - 1 - lo).astype(np.int64)
    death = lo + (rng.random(n) * span).astype(np.int64)

    u = rng.random(n)
    marital = np.full(n, "10", dtype=object)
    legal = age >= np.where(male, 22, 20)
    band = np.select([age < 30, age < 60, age >= 60], [0, 1, 2])
    married_p = np.array([0.45, 0.86, 0.72])[band]
    widowed_p = np.array([0.0, 0.02, 0.20])[band] * (age >= 25)
    divorced_p = np.array([0.02, 0.05, 0.03])[band]
    marital = np.where(
        u < married_p,
        "20",
        np.where(
            u < married_p + widowed_p, "30", np.where(u < married_p + widowed_p + divorced_p, "40", "10")
        ),
    )
    marital = np.where(legal, marital, "10")
    return alive, death, marital


def make_persons(rng: np.random.Generator, n: int, regions: Regions) -> pd.DataFrame:
    """One row per person; columns hold canonical (truth) values plus the pieces the sources
    need for variation (name_variant, name_traditional, surname_variant, name_no_separator,
    old_household_region, old_address, old_phone) and the look-alike partners (twin_of,
    namesake_of: person_id or None)."""
    years, yw = _birth_year_weights()
    by = rng.choice(years, size=n, p=yw)
    start = (by - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    ylen = ((by + 1 - 1970).astype("datetime64[Y]").astype("datetime64[D]") - start).astype(np.int64)
    birth = start + (rng.random(n) * ylen).astype(np.int64)
    birth = np.minimum(birth, REF_DATE - 30)
    male = rng.random(n) < 0.512
    cidx = regions.pick_for_years(rng, by)

    # names
    snames, sw = T.surnames()
    g1, g1v = T.given_pairs()
    s_idx = rng.choice(len(snames), size=n, p=sw)
    a_idx = rng.integers(0, len(g1), n)
    b_idx = rng.integers(0, len(g1), n)
    single = rng.random(n) < np.where(by < 1975, 0.35, 0.2)
    sur = T.sarr(snames)[s_idx]
    ga, gav = T.sarr(g1)[a_idx], T.sarr(g1v)[a_idx]
    gb, gbv = T.sarr(g1)[b_idx], T.sarr(g1v)[b_idx]
    eth_codes = np.array([c for c, _ in _ethnicity_table()], dtype=object)
    eth_w = np.array([w for _, w in _ethnicity_table()])
    ethnicity = eth_codes[rng.choice(len(eth_codes), size=n, p=eth_w)].astype(S)

    # look-alikes: twins take the partner's birth, county, surname and ethnicity (and, below,
    # address); namesakes the partner's birth date and a common full name
    twin_of, namesake_of = _look_alikes(rng, n, male)
    tw = np.flatnonzero(twin_of >= 0)
    birth[tw], cidx[tw], by[tw] = birth[twin_of[tw]], cidx[twin_of[tw]], by[twin_of[tw]]
    sur[tw], ethnicity[tw] = sur[twin_of[tw]], ethnicity[twin_of[tw]]
    same_given = (ga[tw] == ga[twin_of[tw]]) & (single[tw] | (gb[tw] == gb[twin_of[tw]]))
    ga[tw[same_given]] = T.sarr(g1)[(a_idx[tw[same_given]] + 1) % len(g1)]
    name = np.where(single, cat(sur, ga), cat(sur, ga, gb))
    name_variant = np.where(single, cat(sur, _given_variant(ga, gav)), cat(sur, ga, _given_variant(gb, gbv)))
    ns = np.flatnonzero(namesake_of >= 0)
    common = T.sarr(T.COMMON_NAMES)[rng.integers(0, len(T.COMMON_NAMES), len(ns))]
    name[ns] = name[namesake_of[ns]] = common
    name_variant[ns] = name_variant[namesake_of[ns]] = common
    sur[ns] = sur[namesake_of[ns]] = np.strings.slice(common, 0, 1)
    birth[ns], by[ns] = birth[namesake_of[ns]], by[namesake_of[ns]]
    cidx[ns] = regions.pick_for_years(rng, by[ns])  # a county that existed in the new birth year
    ethnicity[ns] = ethnicity[namesake_of[ns]] = "01"
    name_no_separator, name_traditional, surname_variant = _name_forms(
        rng, name, name_variant, sur, ethnicity, tw, twin_of
    )

    gender = np.where(male, "1", "2")
    addr_code = regions.code[cidx]
    rid = _unique_resident_ids(rng, addr_code, by, birth, male)

    address, old_address, region = _residence(rng, regions, cidx, addr_code, twin_of)
    phone = mobiles(rng, n)
    old_phone = mobiles(rng, n)

    alive, death, marital = _vital(rng, birth, male)

    width = max(7, len(str(n)))
    pid = cat("P", num(np.arange(1, n + 1), width))
    return pd.DataFrame(
        {
            "person_id": pid,
            "resident_id": rid,
            "name": name,
            "name_variant": name_variant,
            "name_traditional": name_traditional,
            "surname_variant": surname_variant,
            "name_no_separator": name_no_separator,
            "gender": gender,
            "birth_date": birth.astype("datetime64[D]"),
            "ethnicity": ethnicity,
            "household_region": num(region, 6),
            "old_household_region": num(addr_code, 6),
            "address": address,
            "old_address": old_address,
            "phone": phone,
            "old_phone": old_phone,
            "marital_status": marital,
            "alive": alive,
            "death_date": np.where(alive, np.datetime64("NaT"), death).astype("datetime64[D]"),
            "twin_of": _partner_ids(pid, twin_of),
            "namesake_of": _partner_ids(pid, namesake_of),
        }
    )


def _ethnicity_table() -> list[tuple[str, float]]:
    """(code, share) of every code of ethnicity.csv: the shares of ETHNICITY_SHARES for the
    codes it names, the rest equal parts of what is left."""
    listed = reference.codes("ethnicity")
    known = [(c, w) for c, w in ETHNICITY_SHARES.items() if c in listed]
    rest = [c for c in listed if c not in ETHNICITY_SHARES]
    left = 1.0 - sum(ETHNICITY_SHARES.values())
    table = known + [(c, left / len(rest)) for c in rest]
    total = sum(w for _, w in table)
    return [(c, w / total) for c, w in table]


# ---------------------------------------------------------------- organisations
_TYPE_PREFIX = {
    "limited_company": 91,
    "joint_stock": 91,
    "sole_proprietorship": 91,
    "partnership": 91,
    "individual_business": 92,
    "public_institution": 12,
    "social_organisation": 51,
}


def _shares(shares: dict[str, float], listed: list[str] | dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The keys of `shares` found in a code list, and their shares made to sum to 1."""
    keys = [k for k in shares if k in listed]
    w = np.array([shares[k] for k in keys], dtype=float)
    return np.array(keys), w / w.sum()


def _org_names(
    rng: np.random.Generator,
    etype: np.ndarray,
    name: np.ndarray,
    zh: np.ndarray,
    city: np.ndarray,
    county: np.ndarray,
    words: np.ndarray,
    form: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(registered names, the variants other departments write): some companies are named
    with the region in brackets; variants drop the region, swap 有限公司/有限责任公司, add a
    branch suffix, or use ASCII brackets."""
    m = len(name)
    company = np.isin(etype, ["limited_company", "joint_stock"])
    bracketed = company & (rng.random(m) < 0.3)
    name = np.where(bracketed, cat(zh, "（", city, "）", words, form), name).astype(S)
    name_no_region = np.where(company, cat(zh, words, form), name).astype(S)
    limited = etype == "limited_company"
    name_form = np.where(
        limited & np.strings.endswith(name, "有限责任公司"),
        np.strings.replace(name, "有限责任公司", "有限公司"),
        np.where(limited, np.strings.replace(name, "有限公司", "有限责任公司"), name),
    ).astype(S)
    name_branch = np.where(company, cat(name, county, "分公司"), name).astype(S)
    name_half = np.strings.replace(np.strings.replace(name, "（", "("), "）", ")").astype(S)

    return name, {
        "name_no_region": name_no_region,
        "name_form": name_form,
        "name_branch": name_branch,
        "name_half_brackets": name_half,
    }


def make_organisations(
    rng: np.random.Generator, m: int, persons: pd.DataFrame, regions: Regions
) -> pd.DataFrame:
    """One row per organisation, canonical values (entity_type/status as code-list slugs)."""
    types, tw = _shares(ENTITY_TYPE_SHARES, reference.codes("entity_type"))
    etype = types[rng.choice(len(types), size=m, p=tw)]
    sec, sw = _shares(T.INDUSTRY_WEIGHTS, reference.codes("industry"))
    industry = sec[rng.choice(len(sec), size=m, p=sw)]
    industry = np.where(etype == "public_institution", np.where(rng.random(m) < 0.5, "P", "Q"), industry)
    industry = np.where(etype == "social_organisation", "S", industry)

    # legal representatives: living adults (born before 2000)
    birth = persons["birth_date"].to_numpy().astype("datetime64[D]")
    eligible = (birth < np.datetime64("2000-01-01")) & persons["alive"].to_numpy()
    pool = np.flatnonzero(eligible)
    rep = pool[rng.integers(0, len(pool), m)]
    rep_birth = birth[rep]

    # establishment: skewed to recent years, never before the rep turned 20
    yrs = np.arange(1992, 2027)
    yw = np.linspace(0.3, 2.0, len(yrs))
    est_y = rng.choice(yrs, size=m, p=yw / yw.sum())
    est = (est_y - 1970).astype("datetime64[Y]").astype("datetime64[D]") + rng.integers(0, 365, m)
    est = np.maximum(est, rep_birth + 20 * 365 + 5)
    est = np.minimum(est, REF_DATE - 30).astype("datetime64[D]")

    # region: mostly the rep's county, else another county
    rep_region = persons["household_region"].to_numpy()[rep].astype(np.int64)
    code_to_idx = {c: i for i, c in enumerate(regions.code)}
    ridx = np.array([code_to_idx[c] for c in rep_region], dtype=np.int64)
    other = rng.integers(0, len(regions.code), m)
    ridx = np.where(rng.random(m) < 0.7, ridx, other)
    region = regions.code[ridx]

    new_style = est >= np.datetime64("2016-01-01")
    org8 = rng.integers(0, 10, (m, 8))
    org8[new_style, 0] = USCC_ALPHABET.index("M")
    org8[new_style, 1] = USCC_ALPHABET.index("A")
    org8[new_style, 2:] = rng.integers(0, 31, (int(new_style.sum()), 6))
    prefix2 = np.array([_TYPE_PREFIX[t] for t in etype], dtype=np.int64)
    prefix2 = np.where((etype == "social_organisation") & (rng.random(m) < 0.4), 52, prefix2)
    code = credit_codes(prefix2, region, org8)
    if pd.Series(code).duplicated().any():  # astronomically rare; re-draw deterministically
        dup = pd.Series(code).duplicated().to_numpy()
        org8[dup, 3:] = rng.integers(0, 10, (int(dup.sum()), 5))
        code = credit_codes(prefix2, region, org8)

    # names
    city = regions.city[ridx]
    county = regions.county[ridx]
    trade = T.sarr(T.TRADE_CHARS)
    zh = cat(trade[rng.integers(0, len(trade), m)], trade[rng.integers(0, len(trade), m)])
    words = np.array(
        [T.sarr(T.INDUSTRY_WORDS[s])[rng.integers(0, len(T.INDUSTRY_WORDS[s]))] for s in industry], dtype=S
    )
    form = np.select(
        [
            etype == "limited_company",
            etype == "joint_stock",
            etype == "sole_proprietorship",
            etype == "partnership",
        ],
        [
            np.where(rng.random(m) < 0.75, "有限公司", "有限责任公司"),
            "股份有限公司",
            "商行",
            "合伙企业（有限合伙）",
        ],
        "",
    ).astype(S)
    shop = T.sarr(T.SHOP_WORDS)[rng.integers(0, len(T.SHOP_WORDS), m)]
    inst = T.sarr(T.INSTITUTION_WORDS)[rng.integers(0, len(T.INSTITUTION_WORDS), m)]
    soc = T.sarr(T.SOCIETY_WORDS)[rng.integers(0, len(T.SOCIETY_WORDS), m)]
    name = np.select(
        [etype == "individual_business", etype == "public_institution", etype == "social_organisation"],
        [cat(county, zh, shop), cat(county, inst), cat(city, words, soc)],
        cat(city, zh, words, form),
    ).astype(S)

    name, variants = _org_names(rng, etype, name, zh, city, county, words, form)

    # registered capital in CNY
    lo_hi = {
        "limited_company": (1e5, 5e7),
        "joint_stock": (1e7, 1e9),
        "sole_proprietorship": (1e4, 5e6),
        "partnership": (1e5, 5e7),
        "individual_business": (1e4, 5e5),
        "public_institution": (1e5, 1e8),
        "social_organisation": (3e4, 5e6),
    }
    lo = np.array([lo_hi[t][0] for t in etype])
    hi = np.array([lo_hi[t][1] for t in etype])
    cap = np.exp(np.log(lo) + rng.random(m) ** 1.6 * (np.log(hi) - np.log(lo)))
    cap = np.where(cap >= 1e8, np.round(cap / 1e6) * 1e6, np.round(cap / 1e4) * 1e4).astype(np.int64)

    status_of = reference.spellings("entity_status")
    st_names, stw = _shares(STATUS_SHARES, status_of)
    st = st_names[rng.choice(len(st_names), size=m, p=stw)]
    status = np.array([status_of[s] for s in st])

    phone = np.where(rng.random(m) < 0.4, persons["phone"].to_numpy()[rep], mobiles(rng, m))
    address = street_addresses(rng, regions.prefix[ridx], with_room=False)
    address = np.where(rng.random(m) < 0.5, cat(address, num(rng.integers(1, 25, m)), "层"), address)

    width = max(7, len(str(m)))
    type_name = reference.names("entity_type")
    return pd.DataFrame(
        {
            "org_id": cat("E", num(np.arange(1, m + 1), width)),
            "credit_code": code,
            "name": name,
            **variants,
            "entity_type": etype,
            "entity_type_name": [type_name[t] for t in etype],
            "legal_rep_person": persons["person_id"].to_numpy()[rep],
            "legal_rep_name": persons["name"].to_numpy()[rep],
            "legal_rep_id": persons["resident_id"].to_numpy()[rep],
            "region": num(region, 6),
            "address": T.sarr(address),
            "registered_capital": num(cap),
            "established_date": est,
            "status": status,
            "status_name": st,
            "industry": industry,
            "phone": T.sarr(phone),
        }
    )
