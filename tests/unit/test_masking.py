from __future__ import annotations

import pandas as pd
import pytest

from etl.publish.masking import mask, mask_content, mask_frame

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


# ---------------------------------------------------------------- masking by content
ID = "11010519491231002X"  # valid check character
OLD_ID = "110105491231123"  # 15 digits, 1949-12-31
PHONE = "13812341234"
SOLE = "92110105MA01ABCD3X"  # 92: 工商 / 个体工商户, an individual business


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"身份证{ID}，电话{PHONE}", "身份证110105********002X，电话138****1234"),
        (f"ID{ID}", "ID110105********002X"),
        (f"tel{PHONE}", "tel138****1234"),
        (f"{PHONE} 13912341234", "138****1234 139****1234"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("8613812341234", "86138****1234"),
        ("110105 19491231 002X", "110105 ******** 002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "１１０１０５********００２Ｘ"),  # full width
        ("1101\u200b0519491231002X", "1101\u200b05********002X"),  # a zero-width space inside
        ("110105194912310028", "110105********0028"),  # wrong check character, real birth date: a typo
        (OLD_ID, "110105******123"),
        (SOLE, "92110105*********X"),
        (f"个体户{SOLE.lower()}号", "个体户92110105*********x号"),
    ],
)
def test_personal_data_is_masked_by_its_shape(text: str, masked: str) -> None:
    assert mask_content(pd.Series([text, None], dtype="string")).tolist() == [masked, pd.NA]


@pytest.mark.parametrize(
    "text",
    [
        "91110000600037341L",  # an enterprise's credit code names no person
        "931101056000373412",  # a farmers' cooperative
        "123456789012345678",  # 18 digits, wrong check character, no date inside
        "1234567890123456789",  # 19 digits: no ID, no phone
        "12812341234",  # 128 is no mobile prefix
        "110105991331123",  # 15 digits without a real date
        "北京市东城区东华门街道1号",
        "2026-11-01",
    ],
)
def test_other_text_is_left_alone(text: str) -> None:
    assert mask_content(pd.Series([text], dtype="string")).tolist() == [text]


@pytest.mark.parametrize("kind", ["none", "credit_code", "name", "address"])
def test_a_declared_mask_does_not_let_an_id_or_phone_through(kind: str) -> None:
    """A ragged row shifts an ID into a column whose declared mask keeps it (or part of it)."""
    out = mask(pd.Series([ID, f"{ID} 13987654321", SOLE]), kind).tolist()
    assert all(ID[6:14] not in v and "8765" not in v and "MA01ABCD3" not in v for v in out), out


def test_masking_by_content_leaves_numbers_and_frames_of_numbers() -> None:
    df = pd.DataFrame({"row": [1, 2], "amount": [-12.5, 3.0], "note": [ID, "ok"]})
    out = mask_frame(df)
    assert out["row"].tolist() == [1, 2] and out["amount"].tolist() == [-12.5, 3.0]
    assert out["note"].tolist() == ["110105********002X", "ok"]
