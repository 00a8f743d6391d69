"""storage_error: which failures mean "the home cannot be written", and what they then say."""

from __future__ import annotations

import errno

import duckdb
import pytest

from etl.errors import GovbaseError, StorageError, storage_error

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS])
def test_os_errors_of_storage_name_the_file(code: int) -> None:
    exc = OSError(code, "some words", "/home/w/staging/x.parquet")
    err = storage_error(exc, "load of ps_hukou")
    assert isinstance(err, StorageError) and isinstance(err, GovbaseError)
    assert (
        str(err) == "load of ps_hukou: cannot write /home/w/staging/x.parquet: some words; fix it and rerun"
    )


def test_duckdb_and_arrow_errors_are_recognized_by_their_words() -> None:
    exc = duckdb.IOException('Could not write file "/h/govbase.duckdb.wal": No space left on device')
    err = storage_error(exc, "ledger")
    assert err is not None and "govbase.duckdb.wal" in str(err) and "No space left" in str(err)
    arrow = OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert storage_error(arrow, "extract") is not None


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad value"), OSError(errno.ENOENT, "No such file"), GovbaseError("No space left on device")],
)
def test_other_failures_are_not_storage_errors(exc: Exception) -> None:
    assert storage_error(exc, "x") is None
