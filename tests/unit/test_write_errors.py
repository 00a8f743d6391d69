"""write_error: which failures mean "the home cannot be written", and what they then say."""

from __future__ import annotations

import errno

import duckdb
import pytest

from etl.errors import GovbaseError, WarehouseWriteError, write_error, writing

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS])
def test_os_errors_of_storage_name_the_file(code: int) -> None:
    exc = OSError(code, "some words", "/home/w/staging/x.parquet")
    err = write_error(exc, "the warehouse (load of ps_hukou)")
    assert isinstance(err, WarehouseWriteError) and isinstance(err, GovbaseError)
    assert str(err) == (
        "cannot write the warehouse (load of ps_hukou): some words (/home/w/staging/x.parquet); "
        "fix it and rerun"
    )
    assert err.path == "/home/w/staging/x.parquet"


def test_duckdb_and_arrow_errors_are_recognized_by_their_words() -> None:
    exc = duckdb.IOException('Could not write file "/h/govbase.duckdb.wal": No space left on device')
    err = write_error(exc)
    assert err is not None and "govbase.duckdb.wal" in str(err) and "No space left" in str(err)
    assert str(err).startswith("cannot write the warehouse: ")
    arrow = OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert write_error(arrow) is not None


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad value"), OSError(errno.ENOENT, "No such file"), GovbaseError("No space left on device")],
)
def test_other_failures_are_not_write_errors(exc: Exception) -> None:
    assert write_error(exc, "x") is None


def test_a_write_error_is_kept_as_it_is() -> None:
    first = WarehouseWriteError(OSError(errno.ENOSPC, "No space left on device", "/h/raw/a.parquet"), "raw")
    assert write_error(first, "something else") is first


def test_writing_turns_write_failures_into_one_error_and_leaves_the_rest() -> None:
    match = r"^cannot write the shares: Permission denied \(/h/s\)"
    with pytest.raises(WarehouseWriteError, match=match), writing("the shares"):
        raise PermissionError(errno.EACCES, "Permission denied", "/h/s")
    with pytest.raises(KeyError), writing("the shares"):
        raise KeyError("not a write problem")


def test_the_path_is_named_as_an_operator_looks_for_it() -> None:
    # GE names its Data Docs folder <home>/gx/../docs: the error names <home>/docs
    err = write_error(OSError(errno.EPERM, "Operation not permitted", "/h/gx/../docs/static"))
    assert err is not None and err.path == "/h/docs/static"
    assert str(err).endswith("(/h/docs/static); fix it and rerun")
