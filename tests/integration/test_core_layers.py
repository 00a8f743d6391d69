"""etl.resolve.store: a core table published as a chain of layers over its base file (each
patch's drop keys and added rows, etl.resolve.layers), equal to the same patches written
whole, compacted back to one file at the bounds (MAX_LAYERS, LAYER_FRACTION), followed by
the published catalog, and what a kill at each write boundary leaves (real DuckDB files in
a fresh home)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import corekit as ck
import pandas as pd
import pytest

from etl import debris, meta
from etl.config import Settings
from etl.published import publish_catalog
from etl.resolve import store
from etl.resolve.store import Patch

pytestmark = pytest.mark.integration


def _frame(ids: list[int], tag: str = "a", entity: str = "p") -> pd.DataFrame:
    return ck.frame(ids, tag, entity=entity, digits=5)


def _read(settings: Settings, table: str, **kw: object) -> pd.DataFrame:
    with meta.connect(settings, read_only=True) as con:
        got = store.read_core(con, settings, table, **kw)  # type: ignore[arg-type]
    assert got is not None
    return got.sort_values(["entity", "id"], ignore_index=True)


def _chain(settings: Settings, table: str) -> list[tuple]:
    with meta.connect(settings, read_only=True) as con:
        return con.execute(
            "select seq, drop_rows, add_rows from meta.core_layer where table_name = ? order by seq", [table]
        ).fetchall()


def _rows(settings: Settings, table: str) -> int:
    with meta.connect(settings, read_only=True) as con:
        return con.execute("select rows from meta.core_table where table_name = ?", [table]).fetchall()[0][0]


def _random_patch(rng: random.Random, held: pd.DataFrame, fresh: int, run: int) -> Patch:
    """Drop some held keys (some replaced by a new row), a few keys nobody holds, a key
    twice; add new keys (both entities, a composite key)."""
    keys = list(held[["entity", "id"]].itertuples(index=False, name=None))
    dropped = rng.sample(keys, min(len(keys), rng.randint(0, 12)))
    replaced = dropped[: len(dropped) // 2]
    drop = pd.DataFrame(
        [*dropped, ("p", "X99999"), ("o", f"X{fresh + 500:05d}"), *dropped[:1]],
        columns=["entity", "id"],
    )
    parts = [_frame([int(i[1:]) for e, i in replaced if e == ent], f"r{run}", ent) for ent in ("p", "o")]
    parts += [_frame(list(range(fresh, fresh + rng.randint(0, 6))), f"n{run}", rng.choice("po"))]
    add = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    if rng.random() < 0.3:
        add = add.iloc[:0]
    return Patch(("entity", "id"), drop, add)


def _apply(held: pd.DataFrame, patch: Patch) -> pd.DataFrame:
    gone = set(patch.drop.itertuples(index=False, name=None))
    keep = held[[k not in gone for k in held[["entity", "id"]].itertuples(index=False, name=None)]]
    return pd.concat([keep, patch.add], ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_layers_equal_the_same_patches_written_whole_over_many_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    first = pd.concat([_frame(list(range(0, 60))), _frame(list(range(0, 40)), entity="o")], ignore_index=True)
    ck.publish(settings, "r0", {"layered": first, "whole": first})
    publish_catalog(settings, "c0")
    held, fresh, lengths, patched, full = first, 1000, [], 0, 0
    monkeypatch.setattr(store, "LAYER_FRACTION", 1.0)
    for run in range(1, 9):
        patch = _random_patch(rng, held, fresh, run)
        fresh += 100
        held = _apply(held, patch)
        monkeypatch.setattr(store, "MAX_LAYERS", 3)
        ck.publish(settings, f"r{run}", {"layered": patch})
        monkeypatch.setattr(store, "MAX_LAYERS", 0)
        ck.publish(settings, f"r{run}", {"whole": patch})
        lengths.append(len(_chain(settings, "layered")))
        assert _chain(settings, "whole") == []
        whole, layered = _read(settings, "whole"), _read(settings, "layered")
        pd.testing.assert_frame_equal(layered, whole)  # values and dtypes (Int64, string, datetime)
        assert len(whole) == len(held) == _rows(settings, "layered") == _rows(settings, "whole")
        for entity in ("p", "o"):
            pd.testing.assert_frame_equal(
                _read(settings, "layered", entity=entity, columns=["entity", "id", "tag"]),
                whole[whole["entity"] == entity][["entity", "id", "tag"]].reset_index(drop=True),
            )
        assert ck.view(settings, "layered") == ck.view(settings, "whole")
        if run % 3:  # the catalog follows the chain, also two layers behind
            done = publish_catalog(settings, f"c{run}")
            behind = run % 3 == 1 and run > 1  # no catalog published after the previous run
            if done.full is not None:  # the small catalog's free blocks: copied anew
                full += 1
            elif behind and not lengths[-1]:  # compacted: a patch of the state it does not hold
                assert "core.layered" in done.copied, run
            else:
                assert "core.layered" in done.patched, (run, lengths)
            # one file patched each run: two patches behind, it is copied
            assert done.full is not None or ("core.whole" in done.copied) == behind, run
            patched += "core.layered" in done.patched
            assert ck.catalog(settings, "layered") == ck.view(settings, "layered")
            assert ck.catalog(settings, "whole") == ck.view(settings, "whole")
    assert lengths == [1, 2, 3, 0, 1, 2, 3, 0]  # layered up to the bound, then compacted
    assert patched >= 2 and full <= 2
    with meta.connect(settings) as con:
        assert debris.sweep_core(con, settings) == []  # every file on disk in use
        named = ck.named_files(con)
    assert ck.files_on_disk(settings) == named


def test_a_layer_writes_only_the_patch_and_compaction_bounds_the_chain(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ck.publish(settings, "r1", {"t": _frame(list(range(100)))})
    folder = settings.warehouse / "core" / "t"
    ck.publish(
        settings, "r2", {"t": Patch(("entity", "id"), _frame([1, 2])[["entity", "id"]], _frame([2], "b"))}
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "run=r1.parquet",
        "run=r2.add.parquet",
        "run=r2.drop.parquet",
    ]  # the base kept, only the layer written
    assert _chain(settings, "t") == [(1, 2, 1)] and _rows(settings, "t") == 99
    with meta.connect(settings, read_only=True) as con:
        assert con.execute("select path from meta.core_table").fetchall() == [("core/t/run=r1.parquet",)]
        assert con.execute("select count(*) from meta.core_patch").fetchall() == [(0,)]
    # past LAYER_FRACTION (layers' drop keys + added rows over the table's rows): one file again
    monkeypatch.setattr(store, "LAYER_FRACTION", 0.1)
    big = Patch(("entity", "id"), _frame(list(range(3, 10)))[["entity", "id"]], _frame([200, 201]))
    ck.publish(settings, "r3", {"t": big})
    assert _chain(settings, "t") == [] and _rows(settings, "t") == 99 - 7 + 2
    assert sorted(p.name for p in folder.iterdir()) == [
        "run=r3.add.parquet",
        "run=r3.drop.parquet",
        "run=r3.parquet",
    ]  # the base and the layer deleted after the commit; the patch kept for the catalog
    expected = _apply(
        _apply(
            _frame(list(range(100))),
            Patch(("entity", "id"), _frame([1, 2])[["entity", "id"]], _frame([2], "b")),
        ),
        big,
    )
    assert len(ck.view(settings, "t")) == len(expected)
    # a whole frame over a layered table: its layers go with the base
    monkeypatch.setattr(store, "LAYER_FRACTION", 1.0)
    ck.publish(
        settings, "r4", {"t": Patch(("entity", "id"), _frame([50])[["entity", "id"]], _frame([0]).iloc[:0])}
    )
    assert len(_chain(settings, "t")) == 1
    ck.publish(settings, "r5", {"t": _frame(list(range(4)))})
    assert sorted(p.name for p in folder.iterdir()) == ["run=r5.parquet"] and _chain(settings, "t") == []
    # a patch keyed otherwise than the chain compacts
    ck.publish(
        settings, "r6", {"t": Patch(("entity", "id"), _frame([1])[["entity", "id"]], _frame([0]).iloc[:0])}
    )
    ck.publish(settings, "r7", {"t": Patch(("id",), pd.DataFrame({"id": ["X00002"]}), _frame([0]).iloc[:0])})
    assert _chain(settings, "t") == [] and [r[1] for r in ck.view(settings, "t")] == ["X00000", "X00003"]


def test_the_view_of_a_layered_table_and_its_comments_read_relative_paths(settings: Settings) -> None:
    ck.publish(settings, "r1", {"t": _frame(list(range(50)))})
    ck.publish(
        settings, "r2", {"t": Patch(("entity", "id"), _frame([1])[["entity", "id"]], _frame([1], "b"))}
    )
    with meta.connect(settings, read_only=True) as con:
        sql = con.execute("select sql from duckdb_views() where view_name = 't'").fetchall()[0][0]
    assert "core/t/run=r2.drop.parquet" in sql and str(settings.warehouse) not in sql
    assert ("p", "X00001", 1, pd.Timestamp("2000-01-02").date(), "b") in ck.view(settings, "t")


_KILLED = """
import sys
import pandas as pd
from etl import meta
from etl.config import get_settings
from etl.resolve import store
settings = get_settings(sys.argv[1])
key = pd.DataFrame({"entity": ["p"], "id": ["X00001"]})
add = pd.DataFrame({"entity": ["p"], "id": ["Y"], "n": [1], "born": [pd.Timestamp("2001-02-03")], "tag": ["k"]})
with meta.connect(settings) as con:
    store.publish(con, settings, sys.argv[2], {"t": store.Patch(("entity", "id"), key, add), "u": store.Patch(("entity", "id"), key, add)}, {}, [], ["born"])
"""


@pytest.mark.parametrize(
    ("point", "published"),
    [
        ("consolidate:after_core_file", False),
        ("consolidate:after_core_file@2", False),
        ("consolidate:before_commit", False),
        ("consolidate:after_commit", True),
        ("consolidate:after_sweep", True),
    ],
)
def test_a_kill_while_layering_leaves_the_previous_state_readable(
    settings: Settings, point: str, published: bool
) -> None:
    ck.publish(settings, "r1", {"t": _frame(list(range(30))), "u": _frame(list(range(20)))})
    ck.publish(
        settings, "r2", {"t": Patch(("entity", "id"), _frame([0])[["entity", "id"]], _frame([0], "b"))}
    )
    publish_catalog(settings, "c1")
    assert len(_chain(settings, "t")) == 1
    before = {t: ck.view(settings, t) for t in ("t", "u")}
    env = {**os.environ, "GOVBASE_FAULT": point}
    got = subprocess.run([sys.executable, "-c", _KILLED, str(settings.home), "r3"], env=env, check=False)
    assert got.returncode == -9
    after = {t: ck.view(settings, t) for t in ("t", "u")}
    if published:
        assert all(len(after[t]) == len(before[t]) for t in after) and after != before
        assert len(_chain(settings, "t")) == 2 and len(_chain(settings, "u")) == 1
    else:
        assert after == before and len(_chain(settings, "t")) == 1
    with meta.connect(settings) as con:
        debris.sweep_core(con, settings)
        named = ck.named_files(con)
    assert ck.files_on_disk(settings) == named
    done = publish_catalog(settings, "c2")  # the catalog's copy is of the state before: patched
    assert "core.t" in done.patched + done.kept and ck.catalog(settings, "t") == ck.view(settings, "t")
    subprocess.run([sys.executable, "-c", _KILLED, str(settings.home), "r4"], check=True)
    for table, rows in before.items():
        expected = [r for r in (after[table] if published else rows) if r[1] != "X00001"]
        assert len(ck.view(settings, table)) == len(expected) + 1
    publish_catalog(settings, "c3")
    assert ck.catalog(settings, "t") == ck.view(settings, "t") and ck.catalog(settings, "u") == ck.view(
        settings, "u"
    )
