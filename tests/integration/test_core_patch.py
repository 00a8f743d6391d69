"""etl.resolve.store: a core table published as a Patch of its current file (DuckDB writes
the new file: types kept, dates DATE), the published catalog applying it to its copy, and
what a kill at each write boundary leaves (real DuckDB files in a fresh home). Every patch
here makes a new file (store.MAX_LAYERS 0: what a compaction writes); a patch as a layer
over the file: tests/integration/test_core_layers.py."""

from __future__ import annotations

import os
import subprocess
import sys

import corekit as ck
import duckdb
import pandas as pd
import pytest

from etl import debris, meta
from etl.config import Settings
from etl.published import publish_catalog
from etl.resolve import store
from etl.resolve.store import Patch

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MAX_LAYERS", 0)


def _core_table(settings: Settings) -> dict[str, tuple[str, int]]:
    with meta.connect(settings, read_only=True) as con:
        return {
            t: (p, r)
            for t, p, r in con.execute("select table_name, path, rows from meta.core_table").fetchall()
        }


def _dtypes(settings: Settings, table: str) -> dict[str, object]:
    with meta.connect(settings, read_only=True) as con:
        frame = store.read_core(con, settings, table)
    assert frame is not None
    return dict(frame.dtypes)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    con = duckdb.connect()
    con.register("f", frame)
    return sorted(con.execute("select id, n, cast(born as date), tag from f").fetchall())


def test_a_patch_writes_the_current_file_minus_drop_plus_add_with_its_types(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(10)), "u": ck.frame(range(3))})
    types, _ = ck.typed_view(settings, "t")
    dtypes = _dtypes(settings, "t")
    assert dict(types)["born"] == "DATE"
    drop = pd.DataFrame({"id": ["X0002", "X0005", "X9999"]})  # a key not in the table drops nothing
    add = ck.frame(range(5, 7), "b")
    add["n"] = add["n"].astype("float64")  # another type than the file's: cast to its
    ck.publish(
        settings, "r2", {"t": Patch(("id",), drop, add), "u": Patch(("id",), drop.iloc[:0], add.iloc[:0])}
    )
    expected = pd.concat(
        [ck.frame(range(10)).query("id not in ['X0002', 'X0005']"), ck.frame(range(5, 7), "b")]
    )
    got_types, got = ck.typed_view(settings, "t")
    assert got_types == types and got == _rows(expected)
    assert _dtypes(settings, "t") == dtypes  # pandas reads the patched file as it read the base
    files = _core_table(settings)
    assert files["t"] == ("core/t/run=r2.parquet", len(expected))
    assert files["u"] == ("core/u/run=r1.parquet", 3)  # an empty patch keeps the current file
    folder = settings.warehouse / "core" / "t"
    assert sorted(p.name for p in folder.iterdir()) == [
        "run=r2.add.parquet",
        "run=r2.drop.parquet",
        "run=r2.parquet",
    ]  # the base deleted after the commit; the patch kept beside the new file
    assert sorted(p.name for p in (settings.warehouse / "core" / "u").iterdir()) == ["run=r1.parquet"]
    with meta.connect(settings, read_only=True) as con:
        row = con.execute(
            "select base_path, key, drop_path, add_path, drop_rows, add_rows from meta.core_patch"
        ).fetchall()
    assert row == [
        ("core/t/run=r1.parquet", '["id"]', "core/t/run=r2.drop.parquet", "core/t/run=r2.add.parquet", 3, 2)
    ]
    ck.publish(settings, "r3", {"t": ck.frame(range(4))})  # a whole frame again: the patch is gone
    assert sorted(p.name for p in folder.iterdir()) == ["run=r3.parquet"]
    with meta.connect(settings, read_only=True) as con:
        assert con.execute("select count(*) from meta.core_patch").fetchall() == [(0,)]


def test_a_patch_by_a_composite_key_and_patched_sql(settings: Settings) -> None:
    frame = pd.DataFrame({"entity": ["p", "p", "o", "o"], "id": ["1", "2", "1", "2"], "v": [1, 2, 3, 4]})
    ck.publish(settings, "r1", {"k": frame})
    patch = Patch(
        ("entity", "id"),
        pd.DataFrame({"entity": ["o", "p"], "id": ["1", "2"]}),
        pd.DataFrame({"entity": ["o"], "id": ["1"], "v": [30]}),
    )
    with meta.connect(settings) as con:
        sql = store.patched(con, settings, "k", patch)
        before = sorted(con.execute(sql).fetchall())
    assert before == [("o", "1", 30), ("o", "2", 4), ("p", "1", 1)]
    ck.publish(settings, "r2", {"k": patch})
    assert ck.typed_view(settings, "k")[1] == before
    assert _core_table(settings)["k"][1] == 3


def test_a_patch_of_a_table_without_a_file_or_with_other_columns_is_refused(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(3))})
    with pytest.raises(ValueError, match="no current file"):
        ck.publish(
            settings,
            "r2",
            {"t": ck.frame(range(3)), "new": Patch(("id",), ck.frame(range(1))[["id"]], ck.frame(range(1)))},
        )
    with pytest.raises(ValueError, match="missing: tag"):
        ck.publish(
            settings,
            "r3",
            {"t": Patch(("id",), ck.frame(range(1))[["id"]], ck.frame(range(1)).drop(columns="tag"))},
        )
    with pytest.raises(ValueError, match="lacks its key"):
        Patch(("id",), pd.DataFrame({"x": [1]}), ck.frame(range(1)))
    assert _core_table(settings) == {"t": ("core/t/run=r1.parquet", 3)}
    with meta.connect(settings) as con:  # refused before anything was written
        assert debris.sweep_core(con, settings) == []
    assert sorted(p.name for p in (settings.warehouse / "core").rglob("*.parquet")) == ["run=r1.parquet"]


def test_the_catalog_applies_a_patch_to_its_copy_of_the_base_and_copies_otherwise(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(50)), "u": ck.frame(range(5))})
    publish_catalog(settings, "c1")
    patch = Patch(("id",), pd.DataFrame({"id": ["X0001", "X0002"]}), ck.frame(range(2, 4), "b"))
    ck.publish(
        settings, "r2", {"t": patch, "u": Patch(("id",), pd.DataFrame({"id": []}), ck.frame(range(0)))}
    )
    done = publish_catalog(settings, "c2")
    assert done.patched == ("core.t",) and "core.t" not in done.copied
    assert "core.u" in done.kept and done.full is None
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")
    assert len(ck.typed_catalog(settings, "t")[1]) == 50 - 2 + 2
    again = publish_catalog(settings, "c3")  # nothing changed since: kept
    assert "core.t" in again.kept and not again.patched
    # two patches with no catalog publish between: the catalog's copy is of neither base
    ck.publish(settings, "r3", {"t": Patch(("id",), pd.DataFrame({"id": ["X0003"]}), ck.frame(range(0)))})
    ck.publish(
        settings, "r4", {"t": Patch(("id",), pd.DataFrame({"id": ["X0004"]}), ck.frame(range(60, 61)))}
    )
    behind = publish_catalog(settings, "c4")
    assert "core.t" in behind.copied and not behind.patched
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")
    settings.catalog_path.unlink()
    ck.publish(settings, "r5", {"t": Patch(("id",), pd.DataFrame({"id": ["X0005"]}), ck.frame(range(0)))})
    fresh = publish_catalog(settings, "c5")  # no catalog to patch: a full copy
    assert fresh.full == "no catalog yet" and "core.t" in fresh.copied
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")
    # a patch adding more than half the table's rows: copied whole (cheaper than delete + insert)
    big = ck.frame(range(100, 160))
    ck.publish(settings, "r6", {"t": Patch(("id",), big[["id"]].iloc[:0], big)})
    large = publish_catalog(settings, "c6")
    assert "core.t" in large.copied and not large.patched
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")


_KILLED = """
import sys
import pandas as pd
from etl import meta
from etl.config import get_settings
from etl.resolve import store
settings = get_settings(sys.argv[1])
store.MAX_LAYERS = int(sys.argv[3]) if len(sys.argv) > 3 else 0
patch = store.Patch(("id",), pd.DataFrame({"id": ["X0001"]}), pd.DataFrame({"id": ["Y"], "n": [1], "born": [pd.Timestamp("2001-02-03")], "tag": ["k"]}))
with meta.connect(settings) as con:
    store.publish(con, settings, sys.argv[2], {"t": patch, "u": store.Patch(("id",), patch.drop, patch.add)}, {}, [], ["born"])
"""


@pytest.mark.parametrize(
    ("point", "published"),
    [
        ("consolidate:after_core_file", False),
        ("consolidate:after_core_file@2", False),
        ("consolidate:before_commit", False),
        ("consolidate:after_commit", True),
    ],
)
def test_a_kill_while_patching_leaves_a_readable_base_and_only_swept_debris(
    settings: Settings, point: str, published: bool
) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(5)), "u": ck.frame(range(3))})
    ck.publish(settings, "r2", {"t": Patch(("id",), pd.DataFrame({"id": ["X0000"]}), ck.frame(range(0)))})
    before = {t: ck.typed_view(settings, t) for t in ("t", "u")}
    env = {**os.environ, "GOVBASE_FAULT": point}
    got = subprocess.run([sys.executable, "-c", _KILLED, str(settings.home), "r3"], env=env, check=False)
    assert got.returncode == -9
    after = {t: ck.typed_view(settings, t) for t in ("t", "u")}
    if published:
        assert all(len(after[t][1]) == len(before[t][1]) for t in after)  # one dropped, one added
        assert after != before
    else:
        assert after == before
    with meta.connect(settings) as con:
        debris.sweep_core(con, settings)
        named = ck.named_files(con)
    assert ck.files_on_disk(settings) == named
    # the rerun patches what the killed run left current (X0001 dropped, Y added)
    subprocess.run([sys.executable, "-c", _KILLED, str(settings.home), "r4"], check=True)
    for table, rows in before.items():
        expected = [r for r in (after[table][1] if published else rows[1]) if r[0] != "X0001"]
        assert len(ck.typed_view(settings, table)[1]) == len(expected) + 1


def test_a_small_frame_equal_to_its_current_file_keeps_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(8)), "u": ck.frame(range(8)), "e": ck.frame(range(0))})
    publish_catalog(settings, "c1")
    changed = ck.frame(range(8))
    changed.loc[3, "tag"] = "z"  # as many rows, one value differs
    ck.publish(settings, "r2", {"t": ck.frame(range(8)), "u": changed, "e": ck.frame(range(0))})
    files = _core_table(settings)
    assert files["t"][0] == "core/t/run=r1.parquet" and files["e"][0] == "core/e/run=r1.parquet"
    assert files["u"][0] == "core/u/run=r2.parquet"
    done = publish_catalog(settings, "c2")
    assert {"core.t", "core.e"} <= set(done.kept) and "core.u" in done.copied
    monkeypatch.setattr(store, "SAME_CHECK_ROWS", 5)  # a larger frame is written without comparing
    ck.publish(settings, "r3", {"t": ck.frame(range(8))})
    assert _core_table(settings)["t"][0] == "core/t/run=r3.parquet"
    assert ck.typed_view(settings, "t")[1] == _rows(ck.frame(range(8)))


def test_a_patch_row_of_a_version_without_row_counts_is_copied_whole(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(20))})
    publish_catalog(settings, "c1")
    ck.publish(settings, "r2", {"t": Patch(("id",), pd.DataFrame({"id": ["X0001"]}), ck.frame(range(0)))})
    with meta.connect(settings) as con:  # as d97390b left meta.core_patch
        con.execute("alter table meta.core_patch drop column add_rows")
        con.execute("alter table meta.core_patch drop column drop_rows")
    done = publish_catalog(settings, "c2")  # e.g. after an ingest, before the next consolidation
    assert "core.t" in done.copied and not done.patched
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")


def test_a_run_id_used_again_never_writes_over_the_current_file(settings: Settings) -> None:
    """An Airflow retry or a cleared task runs consolidation again under its run id, after
    that run committed: its files get new names, so the base stays readable until the
    commit, the patch names its real base and the catalog applies it once."""
    ck.publish(settings, "r1", {"t": ck.frame(range(20)), "w": ck.frame(range(4))})
    ck.publish(settings, "r2", {"t": Patch(("id",), pd.DataFrame({"id": ["X0001"]}), ck.frame(range(0)))})
    publish_catalog(settings, "c1")
    first = _core_table(settings)
    assert first["t"][0] == "core/t/run=r2.parquet"
    # the same run again (e.g. after a load in between): another patch and another whole frame
    patch = Patch(("id",), pd.DataFrame({"id": ["X0002"]}), ck.frame(range(30, 32), "b"))
    ck.publish(settings, "r2", {"t": patch, "w": ck.frame(range(6))})
    files = _core_table(settings)
    assert files["t"] == ("core/t/run=r2.2.parquet", 20 - 2 + 2)
    assert files["w"] == ("core/w/run=r2.parquet", 6)  # w's current file was r1's: no clash
    with meta.connect(settings, read_only=True) as con:
        rows = con.execute("select path, base_path, drop_path, add_path from meta.core_patch").fetchall()
    assert rows == [
        (
            "core/t/run=r2.2.parquet",
            "core/t/run=r2.parquet",
            "core/t/run=r2.2.drop.parquet",
            "core/t/run=r2.2.add.parquet",
        )
    ]
    on_disk = sorted(p.name for p in (settings.warehouse / "core" / "t").iterdir())
    assert on_disk == ["run=r2.2.add.parquet", "run=r2.2.drop.parquet", "run=r2.2.parquet"]
    ids = [r[0] for r in ck.typed_view(settings, "t")[1]]
    assert len(ids) == len(set(ids)) == 20 and "X0002" not in ids and "X0031" in ids
    done = publish_catalog(settings, "c2")  # a patch of the copy it holds, applied once
    assert done.patched == ("core.t",)
    assert ck.typed_catalog(settings, "t") == ck.typed_view(settings, "t")
    assert ck.typed_catalog(settings, "w") == ck.typed_view(settings, "w")
    # a third time, the whole table: a name other than the current file's (r2's first, deleted
    # after the second commit, is free again)
    ck.publish(settings, "r2", {"t": ck.frame(range(3))})
    assert _core_table(settings)["t"] == ("core/t/run=r2.parquet", 3)
    assert sorted(p.name for p in (settings.warehouse / "core" / "t").iterdir()) == ["run=r2.parquet"]
    assert ck.typed_view(settings, "t")[1] == _rows(ck.frame(range(3)))


def test_a_kill_in_a_run_id_used_again_leaves_the_base_readable(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": ck.frame(range(5)), "u": ck.frame(range(3))})
    ck.publish(settings, "r3", {"t": Patch(("id",), pd.DataFrame({"id": ["X0000"]}), ck.frame(range(0)))})
    before = {t: ck.typed_view(settings, t) for t in ("t", "u")}
    env = {**os.environ, "GOVBASE_FAULT": "consolidate:after_core_file"}
    got = subprocess.run([sys.executable, "-c", _KILLED, str(settings.home), "r3"], env=env, check=False)
    assert got.returncode == -9
    assert {t: ck.typed_view(settings, t) for t in ("t", "u")} == before
    publish_catalog(settings, "c1")  # the base as it was: copied from a file still intact
    assert ck.typed_catalog(settings, "t") == before["t"]
