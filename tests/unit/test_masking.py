from __future__ import annotations

import pandas as pd
import pytest

from etl.publish.masking import mask

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("resident_id", "11010519491231002X", "110105********002X"),
        ("name", "张三明", "张*明"),
        ("name", "欧阳娜娜", "欧**娜"),
        ("name", "李四", "李*"),
        ("phone", "13812341234", "138****1234"),
        ("address", "北京市东城区东华门街道1号", "北京市东城区****"),
        ("redact", "汉族", "***"),
        ("date", "1949年12月31日", "1949-**-**"),
        ("none", "91110000600037341L", "91110000600037341L"),
    ],
)
def test_mask(kind: str, value: str, masked: str) -> None:
    assert mask(pd.Series([value, None]), kind).tolist() == [masked, pd.NA]


def test_masked_id_keeps_nothing_of_the_birth_date() -> None:
    out = mask(pd.Series(["11010519491231002X"]), "resident_id").iloc[0]
    assert "19491231" not in out and len(out) == 18
