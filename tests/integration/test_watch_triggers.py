"""The asset watchers' triggers (etl.orchestration.watchers), their async run() against real
folders, a real SQLite source table and a real DuckDB catalog; the state store is a dict
behind the aget/aset calls Airflow's asset state store answers in the triggerer
(tests/dags/running/test_watch_delivery.py runs them in a real triggerer)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from etl.config import get_settings
from etl.orchestration.watchers import (
    LandingTrigger,
    SqlChangeTrigger,
    delivery_date,
    landing_asset_uri,
    watched,
)

pytestmark = pytest.mark.integration

POLL = 0.05
DATES = r"_(\d{8})\."


class Store:
    """What the trigger calls on Airflow's asset state store, kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def _trigger(folder: Path, store: Store, catalog: str = "") -> LandingTrigger:
    t = LandingTrigger(
        source="ps_hukou",
        folder=str(folder),
        pattern="hukou_*.csv",
        date_pattern=DATES,
        catalog=catalog,
        poll_seconds=POLL,
    )
    t.asset_state_store = store  # type: ignore[assignment]  # as the triggerer injects it
    return t


async def _fire(trigger: Any, timeout: float = 5.0) -> dict[str, Any] | None:
    """The payload of the trigger's next event, letting it record its state and return
    (as the triggerer drives it); None when it fires nothing within `timeout`."""
    gen = trigger.run()
    try:
        event = await asyncio.wait_for(gen.__anext__(), timeout)
    except TimeoutError:
        await gen.aclose()
        return None
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()  # records what it fired for, then returns: re-armed by a new instance
    return dict(event.payload)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_fires_per_delivery_date_once_and_again_for_a_correction(tmp_path: Path) -> None:
    folder, store = tmp_path / "ps_hukou", Store()
    folder.mkdir()
    _write(folder / "hukou_20261101.csv", "id,name\n1,a\n")
    _write(folder / "notes.txt", "not a delivery")  # outside the location glob
    first = asyncio.run(_fire(_trigger(folder, store)))
    assert first == {"source": "ps_hukou", "files": ["hukou_20261101.csv"], "dates": ["2026-11-01"]}
    assert set(store.values["delivered"]) == {"hukou_20261101.csv"}
    # re-armed from the same kwargs: the state store says it was fired for, nothing new
    assert asyncio.run(_fire(_trigger(folder, store), timeout=0.5)) is None
    # two deliveries at once: one event per date, the oldest first; an undated file goes with it
    _write(folder / "hukou_20261103.csv", "id,name\n3,c\n")
    _write(folder / "hukou_20261102.csv", "id,name\n2,b\n")
    _write(folder / "hukou_extra.csv", "id,name\n9,z\n")
    second = asyncio.run(_fire(_trigger(folder, store)))
    assert second and second["files"] == ["hukou_20261102.csv", "hukou_extra.csv"]
    assert second["dates"] == ["2026-11-02"]
    third = asyncio.run(_fire(_trigger(folder, store)))
    assert third and (third["files"], third["dates"]) == (["hukou_20261103.csv"], ["2026-11-03"])
    assert asyncio.run(_fire(_trigger(folder, store), timeout=0.5)) is None
    # a corrected file under the same name (other size) is a delivery again
    _write(folder / "hukou_20261101.csv", "id,name\n1,a\n4,d\n")
    fourth = asyncio.run(_fire(_trigger(folder, store)))
    assert fourth and fourth["files"] == ["hukou_20261101.csv"]
    # a deleted file leaves the state
    (folder / "hukou_extra.csv").unlink()
    _write(folder / "hukou_20261104.csv", "id,name\n5,e\n")
    asyncio.run(_fire(_trigger(folder, store)))
    assert "hukou_extra.csv" not in store.values["delivered"]


def test_a_file_still_being_written_does_not_fire(tmp_path: Path) -> None:
    folder, store = tmp_path / "ps_hukou", Store()
    folder.mkdir()
    path = folder / "hukou_20261105.csv"

    async def scenario() -> tuple[dict[str, Any] | None, int]:
        trigger = _trigger(folder, store)
        trigger.poll_seconds = 0.2
        with path.open("w", encoding="utf-8") as fh:
            fh.write("id,name\n")
            fh.flush()
            gen = trigger.run()
            pending = asyncio.ensure_future(gen.__anext__())
            written = 0
            for i in range(30):  # 1.5 s of a slow copy: a line every 0.05 s
                fh.write(f"{i},x\n")
                fh.flush()
                written += 1
                await asyncio.sleep(0.05)
                assert not pending.done(), "fired while the file was still growing"
        event = await asyncio.wait_for(pending, 5)
        await gen.aclose()
        return dict(event.payload), written

    payload, written = asyncio.run(scenario())
    assert payload and payload["files"] == ["hukou_20261105.csv"]
    assert written == 30


def test_first_arming_counts_what_the_extract_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "ps_hukou"
    folder.mkdir()
    done, new = folder / "hukou_20261101.csv", folder / "hukou_20261102.csv"
    _write(done, "id,name\n1,a\n")
    _write(new, "id,name\n2,b\n")
    catalog = tmp_path / "catalog.duckdb"
    con = duckdb.connect(str(catalog))
    con.execute("create schema meta")
    con.execute(
        "create table meta.extract_batch (source varchar, file varchar, file_bytes bigint, status varchar)"
    )
    con.execute(
        "insert into meta.extract_batch values (?, ?, ?, 'extracted'), (?, ?, ?, 'failed')",
        ["ps_hukou", done.name, done.stat().st_size, "ps_hukou", new.name, new.stat().st_size],
    )
    con.close()
    store = Store()
    payload = asyncio.run(_fire(_trigger(folder, store, str(catalog))))
    assert payload and payload["files"] == [new.name]  # the failed batch is not taken as delivered
    assert set(store.values["delivered"]) == {done.name, new.name}


def test_sql_trigger_fires_on_new_and_late_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_GOVBASE_SAMR", raising=False)
    settings = get_settings(tmp_path / "home")
    db = settings.landing / "samr_registry" / "registry.sqlite"  # the contract's default_url
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("create table enterprise_registry (id integer primary key, updated_at text)")
    con.execute("insert into enterprise_registry values (1, '2026-11-01 08:00:00')")
    con.commit()
    store = Store()

    def trigger() -> SqlChangeTrigger:
        t = SqlChangeTrigger(
            source="samr_registry",
            schemas_dir=str(settings.schemas_dir),
            home=str(settings.home),
            poll_seconds=POLL,
        )
        t.asset_state_store = store  # type: ignore[assignment]
        return t

    first = asyncio.run(_fire(trigger()))  # nothing pulled yet (no catalog): the rows are new
    assert first == {"source": "samr_registry", "key": "2026-11-01 08:00:00", "rows_at_key": 1, "dates": []}
    assert asyncio.run(_fire(trigger(), timeout=0.5)) is None
    con.execute("insert into enterprise_registry values (2, '2026-11-02 09:00:00')")
    con.commit()
    second = asyncio.run(_fire(trigger()))
    assert second and (second["key"], second["rows_at_key"]) == ("2026-11-02 09:00:00", 1)
    # a row committed late with the same key value as the newest: the count at the key moves
    con.execute("insert into enterprise_registry values (3, '2026-11-02 09:00:00')")
    con.commit()
    third = asyncio.run(_fire(trigger()))
    assert third and third["rows_at_key"] == 2
    con.close()


def test_run_date_and_switch() -> None:
    def event(uri: str, payload: Any) -> SimpleNamespace:
        return SimpleNamespace(
            asset=SimpleNamespace(uri=uri), extra={"from_trigger": True, "payload": payload}
        )

    events = [
        event(landing_asset_uri("ps_hukou"), {"dates": ["2026-11-02"]}),
        event(landing_asset_uri("ps_hukou"), {"dates": ["2026-11-03", "2026-11-01"]}),
        event("govbase://staging/person/ps_hukou", {"dates": ["2030-01-01"]}),  # not a delivery
    ]
    assert delivery_date(events) == "2026-11-03"
    assert delivery_date([event(landing_asset_uri("samr_registry"), {"dates": []})]) is None
    assert delivery_date([]) is None
    assert watched("all", "ps_hukou") and watched("", "ps_hukou")
    assert not watched("none", "ps_hukou")
    assert watched("tax_registration, ps_hukou", "ps_hukou") and not watched("tax_registration", "ps_hukou")
