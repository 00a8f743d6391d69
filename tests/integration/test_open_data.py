"""Open data on a real warehouse catalog: the files, their suppression attacked from the
published CSV, the DCAT-AP catalog validated with SHACL, determinism, the classifier gate,
and the proof of the line over everything under open/, on a planted warehouse and end to end
on the consolidated demo (issue 13.5, 13.6, 13.8)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demohome import copy_home
from rdflib import RDF, Graph, URIRef
from rdflib import namespace as rns

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, get_contracts
from etl.publish import classify, dcat, suppression
from etl.publish.opendata import OpenDataError, build_open
from etl.publish.openspec import OpenDataset, OpenSpec, load_open, person_codes

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 1)
COUNTIES = {"110105": 700, "310104": 600, "440305": 350, "650102": 12}  # the last: a small province
RIC = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9X](?![0-9X])")
USCC92 = re.compile(r"(?<![0-9A-Z])92[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def persons() -> pd.DataFrame:
    rng = random.Random(11)
    rows = []
    for county, n in COUNTIES.items():
        for _ in range(n):
            born = dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(33_000))
            rows.append(
                {
                    "person_id": f"P{len(rows):010d}",
                    "resident_id": f"{county}{born:%Y%m%d}0011",
                    "name": "张伟",
                    "gender": rng.choice("12"),
                    "birth_date": pd.Timestamp(born),
                    "household_region": county,
                    "phone": f"138{rng.randrange(10**8):08d}",
                    # a person no health record covers: alive unknown, counted as living
                    "alive": rng.choice([True] * 16 + [None] * 3 + [False]),
                }
            )
    return pd.DataFrame(rows)


#: rare industries: B with 3 companies and 2 individual businesses (a person cell to hide),
#: K with 4 companies only (an organisation cell of 4, published)
RARE = [("B", "limited_company")] * 3 + [("B", "individual_business")] * 2 + [("K", "limited_company")] * 4


def entities() -> pd.DataFrame:
    rng = random.Random(12)
    kinds = [(rng.choice("CFI"), rng.choice(["limited_company", "individual_business"])) for _ in range(400)]
    kinds += RARE
    n = len(kinds)
    return pd.DataFrame(
        {
            "legal_entity_id": [f"L{i:010d}" for i in range(n)],
            "credit_code": [f"91110105MA{i:08d}" for i in range(n)],
            "region": [rng.choice(["110105", "310104", "650102"]) for _ in range(n)],
            "industry": [k[0] for k in kinds],
            "entity_type": [k[1] for k in kinds],
            "status": [rng.choice(["active", "active", "active", "cancelled"]) for _ in range(n)],
        }
    )


def indicators() -> pd.DataFrame:
    rows = [
        (code, name, str(y), ind, unit, float(v), f"b{y}", d)
        for code, name in (("110000", "北京市"), ("130100", "石家庄市"))
        for y in (2022, 2023)
        for ind, unit, v in (("地区生产总值", "亿元", 4000 + y), ("常住人口", "万人", 2100 + y % 7))
        for d in (dt.date(2026, 10, 1), AS_OF)
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "region_code",
            "region_name",
            "period",
            "indicator_name",
            "unit",
            "value",
            "_batch_id",
            "_logical_date",
        ],
    )
    df.loc[df["_logical_date"] == AS_OF, "value"] += 0.5  # the later delivery revises every figure
    df["_row_number"] = range(len(df))
    df.loc[0, "region_name"] = "=HYPERLINK(1)"  # a formula in an earlier delivery: never published
    return df


@pytest.fixture
def warehouse(settings: Settings) -> Settings:
    with meta.connect(settings) as con:
        for name, frame in (("person", persons()), ("legal_entity", entities())):
            con.register("f", frame)
            con.execute(f"create table core.{name} as select * from f")
            con.execute(f"create table core.{name}_history as select *, date '{AS_OF}' as valid_from from f")
            con.unregister("f")
        con.register("f", indicators())
        con.execute("create table staging.economic_indicator as select * from f")
    return settings


def spec(contracts: Contracts, settings: Settings) -> OpenSpec:
    return load_open(settings.schemas_dir, contracts.tables)


def published(settings: Settings, contracts: Contracts, date: str = "2026-11-20") -> dict[str, Path]:
    results = build_open(settings, contracts, spec(contracts, settings), [], date)
    return {r.dataset.name: r.files[0].path for r in results}


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_every_declared_dataset_is_published_as_csv_for_spreadsheets_and_parquet(
    warehouse: Settings, contracts: Contracts
) -> None:
    files = published(warehouse, contracts)
    assert set(files) == set(spec(contracts, warehouse).datasets) and len(files) == 3
    for name, csv in files.items():
        raw = csv.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
        parquet = pd.read_parquet(csv.with_suffix(".parquet"))
        assert list(read_csv(csv).columns) == list(parquet.columns), name
        assert len(read_csv(csv)) == len(parquet)
    econ = pd.read_parquet(files["economic_indicators"].with_suffix(".parquet"))
    assert len(econ) == 8 and (econ["value"] % 1 == 0.5).all(), "the latest delivery of each figure"
    assert "=HYPERLINK(1)" not in set(econ["region_name"])


def test_a_formula_in_an_open_text_is_neutralized_in_the_csv(
    warehouse: Settings, contracts: Contracts
) -> None:
    with meta.connect(warehouse) as con:
        con.execute(
            "update staging.economic_indicator set region_name = '=HYPERLINK(1)' where region_code = '110000'"
        )
    csv = published(warehouse, contracts)["economic_indicators"]
    names = set(read_csv(csv)["region_name"])
    assert "'=HYPERLINK(1)" in names and "=HYPERLINK(1)" not in names


def cube_from(
    df: pd.DataFrame, dims: list[str], count: str, others: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The table over `dims` and its suppression pattern as a reader rebuilds them from the
    CSV (a linked table: the rows where the `others` dimensions read total)."""
    if others:
        df = df[(df[others] == "total").all(axis=1)]
    levels = [[*sorted(set(df[d]) - {"total"}), "total"] for d in dims]
    x = np.zeros([len(lv) for lv in levels], dtype=np.int64)
    hidden = np.zeros_like(x, dtype=bool)
    for _, row in df.iterrows():
        at = tuple(lv.index(row[d]) for d, lv in zip(dims, levels, strict=True))
        hidden[at] = row["suppressed"] == "True"
        x[at] = 0 if hidden[at] else int(row[count])
    return x, hidden


def recoverable(x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Which hidden cells the additivity equations fix, given the published cells."""
    from scipy.linalg import null_space

    if not hidden.any():
        return np.zeros(0, dtype=bool)
    basis = null_space(suppression.equations(x.shape).toarray()[:, hidden.ravel()])
    if basis.size == 0:
        return np.ones(int(hidden.sum()), dtype=bool)
    return np.all(np.abs(basis) < 1e-9, axis=1)


def linked_attack(df: pd.DataFrame, ds: OpenDataset) -> tuple[np.ndarray, np.ndarray]:
    """The reader's attack on every table of a dataset at once (linked tables share their grand
    total): which hidden cells the joint equations fix, and each one's interval width."""
    from scipy.linalg import null_space

    names = [d.name for d in ds.dimensions]
    tables = [cube_from(df, dims, ds.count, [n for n in names if n not in dims]) for dims in ds.table_dims]
    a = suppression.linked_equations([x.shape for x, _ in tables])
    values = np.concatenate([x.ravel() for x, _ in tables])
    mask = np.concatenate([h.ravel() for _, h in tables])
    if not mask.any():
        return np.zeros(0, dtype=bool), np.zeros(0)
    basis = null_space(a.toarray()[:, mask])
    exact = np.ones(int(mask.sum()), dtype=bool) if basis.size == 0 else np.all(np.abs(basis) < 1e-9, axis=1)
    low, high = suppression.intervals_of(a, values, mask)
    return exact, high - low


def person_rows(df: pd.DataFrame, ds: OpenDataset, contracts: Contracts, settings: Settings) -> pd.Series:
    """The published rows that count people: all of them, or with people_by the rows of a
    natural-person code (or unknown) of that dimension."""
    if ds.people_by is None:
        return pd.Series(True, index=df.index)
    codes = person_codes(settings.schemas_dir / "reference", ds, contracts.tables[ds.table_name])
    return df[ds.people_by].isin(codes | {"unknown"})


def test_legal_entities_hide_small_counts_of_people_and_publish_organisations(
    warehouse: Settings, contracts: Contracts
) -> None:
    """Linked tables province x status and industry x type: counts are true; individual
    businesses under 10 are hidden and cannot be recovered by combining the two tables (their
    shared grand total, the margins); a count of 4 companies is published."""
    name = "legal_entities_by_region_industry_type_status"
    ds = spec(contracts, warehouse).datasets[name]
    df = read_csv(published(warehouse, contracts)[name])
    truth = entities().assign(province=lambda f: f["region"].str[:2] + "0000")
    truth = truth.rename(columns={"entity_type": "entity_type"})
    shown = df[df["suppressed"] == "False"]
    for _, row in shown.iterrows():
        mask = np.ones(len(truth), dtype=bool)
        for d in ("province", "industry", "entity_type", "status"):
            if row[d] != "total":
                mask &= (truth[d] == row[d]).to_numpy()
        assert int(row["entities"]) == mask.sum(), row.to_dict()
    # every row is a cell of one of the two tables (the others' dimensions read total)
    in_table = [
        (df[[n for n in ("province", "industry", "entity_type", "status") if n not in dims]] == "total").all(
            axis=1
        )
        for dims in ds.table_dims
    ]
    assert (in_table[0] | in_table[1]).all() and (in_table[0] & in_table[1]).sum() == 1
    people = person_rows(df, ds, contracts, warehouse)
    counts = pd.to_numeric(df["entities"].replace("", None), errors="coerce")
    assert (counts[people & counts.notna()] >= 10).all(), "a count of people under 10 is published"
    hidden_person = df[(df["industry"] == "B") & (df["entity_type"] == "individual_business")]
    assert hidden_person["suppressed"].tolist() == ["True"]
    companies = df[(df["industry"] == "K") & (df["entity_type"] == "limited_company")]
    assert companies[["entities", "suppressed"]].values.tolist() == [["4", "False"]]
    grand = df[(df[["province", "industry", "entity_type", "status"]] == "total").all(axis=1)]
    assert grand["entities"].tolist() == [str(len(truth))], "the shared grand total is published"
    exact, width = linked_attack(df, ds)
    assert len(exact) and not exact.any(), "a hidden cell follows from the linked tables"
    assert (width >= ds.protection - 1e-6).all(), "a hidden cell is bounded too tightly"


def test_published_counts_are_true_and_suppressed_ones_cannot_be_recovered(
    warehouse: Settings, contracts: Contracts
) -> None:
    csv = published(warehouse, contracts)["population_by_region_gender_age"]
    df = read_csv(csv)
    dims = ["province", "gender", "age_band"]
    p = persons()[lambda f: f["alive"].map(lambda v: v is not False)]  # not recorded dead
    age = p["birth_date"].map(lambda b: AS_OF.year - b.year - ((AS_OF.month, AS_OF.day) < (b.month, b.day)))
    truth = pd.DataFrame(
        {
            "province": p["household_region"].str[:2] + "0000",
            "gender": p["gender"],
            "age_band": pd.cut(
                age,
                [0, 15, 30, 45, 60, 75, 200],
                right=False,
                labels=["0-14", "15-29", "30-44", "45-59", "60-74", "75+"],
            ).astype(str),
        }
    )
    shown = df[df["suppressed"] == "False"]
    assert len(shown) and (df["suppressed"] == "True").any()
    for _, row in shown.iterrows():
        mask = np.ones(len(truth), dtype=bool)
        for d in dims:
            if row[d] != "total":
                mask &= (truth[d] == row[d]).to_numpy()
        assert int(row["persons"]) == mask.sum() >= 10, row.to_dict()
    assert (df.loc[df["suppressed"] == "True", "persons"] == "").all()
    # the attack: rebuild the table from the CSV (absent cells are zeros) and solve for the hidden
    x, hidden = cube_from(df, dims, "persons")
    assert not recoverable(x, hidden).any(), "a suppressed cell follows from the published ones"


def catalog(warehouse: Settings) -> Graph:
    return Graph().parse(warehouse.layer("open") / "catalog.jsonld", format="json-ld")


def shapes(warehouse: Settings) -> Path:
    return warehouse.schemas_dir / "open" / dcat.SHAPES_FILE


def test_the_catalog_parses_and_conforms_and_its_checksums_match(
    warehouse: Settings, contracts: Contracts
) -> None:
    published(warehouse, contracts)
    g = catalog(warehouse)
    conforms, report = dcat.validate(g, shapes(warehouse))
    assert conforms, report
    assert len(set(g.subjects(RDF.type, rns.DCAT.Dataset))) == 3
    dists = list(g.subjects(RDF.type, rns.DCAT.Distribution))
    assert len(dists) == 6
    root = warehouse.layer("open")
    base = "https://data.govbase.example/open/"
    for d in dists:
        url = str(g.value(d, rns.DCAT.accessURL))
        path = root / url.removeprefix(base)
        data = path.read_bytes()
        assert int(g.value(d, rns.DCAT.byteSize)) == len(data)
        checksum = g.value(d, URIRef("http://spdx.org/rdf/terms#checksum"))
        value = g.value(checksum, URIRef("http://spdx.org/rdf/terms#checksumValue"))
        assert str(value) == hashlib.sha256(data).hexdigest()
        assert g.value(d, rns.DCTERMS.license) is not None and g.value(d, rns.DCAT.mediaType) is not None


@pytest.mark.parametrize(
    ("node_type", "prop"),
    [
        (rns.DCAT.Catalog, rns.DCTERMS.title),
        (rns.DCAT.Catalog, rns.DCTERMS.publisher),
        (rns.DCAT.Dataset, rns.DCTERMS.description),
        (rns.DCAT.Distribution, rns.DCAT.accessURL),
        (rns.DCAT.Distribution, URIRef("http://spdx.org/rdf/terms#checksum")),
    ],
    ids=["catalog-title", "catalog-publisher", "dataset-description", "access-url", "checksum"],
)
def test_a_catalog_missing_a_mandatory_property_fails_the_check(
    warehouse: Settings, contracts: Contracts, node_type: URIRef, prop: URIRef
) -> None:
    published(warehouse, contracts)
    g = catalog(warehouse)
    node = sorted(g.subjects(RDF.type, node_type))[0]
    g.remove((node, prop, None))
    conforms, report = dcat.validate(g, shapes(warehouse))
    assert not conforms and str(prop).rsplit("/", 1)[-1].split("#")[-1] in report


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_publishing_twice_with_no_new_data_changes_nothing(warehouse: Settings, contracts: Contracts) -> None:
    published(warehouse, contracts, "2026-11-20")
    first = snapshot(warehouse.layer("open"))
    published(warehouse, contracts, "2026-12-24")  # another day, same data
    assert snapshot(warehouse.layer("open")) == first and len(first) == 7
    with meta.connect(warehouse) as con:  # new data: the files that depend on it change
        con.execute("update staging.economic_indicator set value = value + 1")
    published(warehouse, contracts, "2026-12-24")
    changed = {k for k, v in snapshot(warehouse.layer("open")).items() if first[k] != v}
    assert changed == {
        "economic_indicators/economic_indicators.csv",
        "economic_indicators/economic_indicators.parquet",
        "catalog.jsonld",
    }


def test_a_flagged_column_stops_open_publication(warehouse: Settings, contracts: Contracts) -> None:
    """The classifier finds phone numbers planted in the unit column (declared L1), and the
    economic indicators, which open that column, are not published."""
    with meta.connect(warehouse) as con:
        con.execute(
            "update staging.economic_indicator set unit = '咨询 13912345678' where _row_number % 2 = 0"
        )
        findings = classify.classify(con, contracts)
    assert [(f.table, f.column, f.kind) for f in findings] == [("economic_indicator", "unit", "mobile")]
    with pytest.raises(
        OpenDataError, match=r"economic_indicators: staging\.economic_indicator\.unit is declared L1"
    ):
        build_open(warehouse, contracts, spec(contracts, warehouse), findings, "2026-11-20")
    assert not warehouse.layer("open").exists()


def test_personal_data_in_an_open_text_stops_publication(warehouse: Settings, contracts: Contracts) -> None:
    """One mobile number is too few for a classification finding; the content check still stops it."""
    with meta.connect(warehouse) as con:
        con.execute(
            "update staging.economic_indicator set region_name = '北京市 13912345678' where _row_number = 9"
        )
    with pytest.raises(OpenDataError, match="economic_indicators, column region_name: holds a mobile"):
        published(warehouse, contracts)
    assert not warehouse.layer("open").exists()


def assert_the_line_holds(
    root: Path, datasets: dict[str, OpenDataset], contracts: Contracts, settings: Settings
) -> None:
    """Everything under open/: only declared datasets and files; no not_open column of the
    source; no count under 10; no resident ID, sole proprietor's credit code or mobile number;
    no suppressed cell recoverable from the published cells."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert {p.relative_to(root).parts[0] for p in files} <= {*datasets, "catalog.jsonld"}
    assert files
    for path in files:
        text = path.read_bytes().decode("utf-8-sig" if path.suffix == ".csv" else "utf-8", errors="replace")
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).to_csv(index=False)
        if path.name == "catalog.jsonld":  # a sha256 in hex may hold 18 digits in a row
            text = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", text)
        for pattern in (RIC, USCC92, MOBILE):
            assert not pattern.search(text), (path, pattern.pattern)
        if path.name == "catalog.jsonld":
            json.loads(text)
            continue
        ds = datasets[path.parent.name]
        df = pd.read_parquet(path) if path.suffix == ".parquet" else read_csv(path)
        assert list(df.columns) == ds.output_columns, path
        table = contracts.tables[ds.table_name]
        dims = {d.name for d in ds.dimensions}
        for c in df.columns:
            if c in table.column_names and c not in dims:
                assert table.column(c).open != "not_open", (path, c)
        if ds.kind == "aggregate":
            counts = pd.to_numeric(df[ds.count].replace("", None), errors="coerce")
            people = counts[person_rows(df, ds, contracts, settings).to_numpy() & counts.notna().to_numpy()]
            assert (people >= ds.min_cell).all(), (path, people.min())
            if path.suffix == ".csv":
                exact, width = linked_attack(df, ds)
                assert not exact.any(), path
                assert (width >= ds.protection - 1e-6).all(), path


def test_a_dataset_no_longer_declared_is_withdrawn(warehouse: Settings, contracts: Contracts) -> None:
    old = warehouse.layer("open") / "persons_by_name"
    old.mkdir(parents=True)
    (old / "persons_by_name.csv").write_text("name,persons\n张伟,3\n", encoding="utf-8")
    (warehouse.layer("open") / "stray.csv").write_text("x\n", encoding="utf-8")
    published(warehouse, contracts)
    assert not old.exists() and not (warehouse.layer("open") / "stray.csv").exists()
    assert "persons_by_name" not in (warehouse.layer("open") / "catalog.jsonld").read_text(encoding="utf-8")


def test_proof_of_the_line_in_open_data(warehouse: Settings, contracts: Contracts) -> None:
    published(warehouse, contracts)
    datasets = spec(contracts, warehouse).datasets
    assert_the_line_holds(warehouse.layer("open"), datasets, contracts, warehouse)
    assert {p.name for p in warehouse.layer("open").iterdir()} == {*datasets, "catalog.jsonld"}


# ---------------------------------------------------------------- end to end on the demo
@pytest.fixture(scope="module")
def demo(demo_consolidated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's consolidated demo (tests/integration/conftest.py), copied: publishing writes."""
    return copy_home(demo_consolidated.home, tmp_path_factory.mktemp("open_demo") / "home")


def test_the_demo_opens_its_datasets_within_the_line(demo: Settings) -> None:
    contracts = get_contracts(demo)
    spec = load_open(demo.schemas_dir, contracts.tables)
    with meta.connect(demo) as con:
        findings = classify.classify(con, contracts)
        living = con.execute(
            "select count(*) from core.person where alive is distinct from false"
        ).fetchall()[0][0]
    results = build_open(demo, contracts, spec, findings, "2026-11-01")
    assert {r.dataset.name for r in results} == set(spec.datasets)
    root = demo.layer("open")
    assert_the_line_holds(root, spec.datasets, contracts, demo)
    population = read_csv(root / "population_by_region_gender_age" / "population_by_region_gender_age.csv")
    total = population[(population[["province", "gender", "age_band"]] == "total").all(axis=1)]
    # the grand total is every person not recorded dead (when protection leaves it published)
    assert total["persons"].tolist() in ([str(living)], [""]), (total, living)
    shown = pd.to_numeric(population["persons"].replace("", None), errors="coerce")
    assert shown.max() <= living and (population["suppressed"] == "False").any()
    assert (population["suppressed"] == "True").any()
    conforms, report = dcat.validate(
        Graph().parse(root / "catalog.jsonld"), demo.schemas_dir / "open" / dcat.SHAPES_FILE
    )
    assert conforms, report
    econ = pd.read_parquet(root / "economic_indicators" / "economic_indicators.parquet")
    assert len(econ) and econ["region_code"].notna().all()


def test_nothing_built_yet_publishes_nothing_and_no_catalog(settings: Settings, contracts: Contracts) -> None:
    """Before any source of an open dataset is built (a first delivery of one department), open
    publication is empty and writes no catalog: a DCAT catalog needs a dataset (it failed SHACL)."""
    with meta.connect(settings):
        pass  # an empty warehouse
    assert published(settings, contracts) == {}
    assert not (settings.layer("open") / dcat.CATALOG_FILE).exists()
