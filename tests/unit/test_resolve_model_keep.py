"""etl.resolve.model: where a model is kept (`save`) and what `load` makes of its path:
another home's model copied into this warehouse once, not again on every run that links
with it; a path inside the warehouse, absolute or relative, names the kept folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from etl.resolve import model


def _model(weight: float = 1.5) -> model.Model:
    tf = pd.DataFrame({"name": ["li", "wang"], "tf_name": [0.25, 0.75]})
    return model.Model(
        settings={"comparisons": [], "w": weight}, tf={"name": tf}, config_hash="h", trained_run="r1"
    )


def _folders(warehouse: Path) -> list[str]:
    return sorted(p.name for p in (warehouse / "core" / "_models" / "person").iterdir())


def test_another_homes_model_is_copied_once(tmp_path: Path) -> None:
    other, here = tmp_path / "other" / "warehouse", tmp_path / "here" / "warehouse"
    foreign = other / model.save(other, "person", _model())
    paths = []
    for _ in range(3):  # three runs linking with the other home's model
        loaded = model.load(here, str(foreign))
        assert loaded is not None and loaded.path == ""  # not kept here (yet)
        paths.append(model.save(here, "person", loaded))
    assert paths == ["core/_models/person/run=r1/model.json"] * 3
    assert _folders(here) == ["run=r1"]
    again = model.load(here, paths[0])
    assert again is not None and again.settings == _model().settings
    pd.testing.assert_frame_equal(again.tf["name"], _model().tf["name"])
    # another model of the same training run (other weights, or other frequencies): its own folder
    assert model.save(here, "person", _model(2.5)) == "core/_models/person/run=r1.2/model.json"
    changed = _model()
    changed.tf["name"].loc[0, "tf_name"] = 0.5
    assert model.save(here, "person", changed) == "core/_models/person/run=r1.3/model.json"
    assert model.kept_copy(here, "person", _model(2.5)) == "core/_models/person/run=r1.2/model.json"
    assert model.kept_copy(here, "person", _model(9.0)) == ""


def test_a_path_inside_the_warehouse_names_the_kept_folder_however_spelled(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    rel = model.save(warehouse, "person", _model())
    spellings = [rel, str(warehouse / rel), str(tmp_path / "warehouse" / "core" / ".." / "core" / rel[5:])]
    for path in spellings:
        loaded = model.load(warehouse, path)
        assert loaded is not None and loaded.path == rel, path
        assert model.save(warehouse, "person", loaded) == rel
    assert _folders(warehouse) == ["run=r1"]
