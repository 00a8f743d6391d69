"""Encoding detection and strict decoding (etl.extract.encoding) with real GBK/GB18030/BOM bytes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.extract.encoding import (
    DecodeFailure,
    TranscodingReader,
    UnsupportedEncoding,
    detect_encoding,
    iter_lines,
)

pytestmark = pytest.mark.unit

TEXT = "公民身份号码,姓名\r\n11010519491231002X,张三\n\n末行无换行"
RARE = "𠀀䶮,鿏"  # outside GBK: GB18030 four-byte sequences


def _write(tmp_path: Path, data: bytes, name: str = "f.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("data", "codec", "how"),
    [
        (TEXT.encode("utf-8"), "utf-8", "utf-8-valid"),
        (TEXT.encode("utf-8-sig"), "utf-8-sig", "bom"),
        (TEXT.encode("gbk"), "gb18030", "gb18030-valid"),
        ((TEXT + RARE).encode("gb18030"), "gb18030", "gb18030-valid"),
        (b"plain ascii\n", "utf-8", "utf-8-valid"),
        (b"", "utf-8", "empty"),
    ],
)
def test_auto_rule(tmp_path: Path, data: bytes, codec: str, how: str) -> None:
    d = detect_encoding(_write(tmp_path, data))
    assert (d.codec, d.how) == (codec, how)


def test_declared_encoding_is_taken_as_is(tmp_path: Path) -> None:
    assert detect_encoding(_write(tmp_path, TEXT.encode("gbk")), "gbk").codec == "gbk"


def test_utf16_bom_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedEncoding, match="UTF-16"):
        detect_encoding(_write(tmp_path, TEXT.encode("utf-16")))


def test_auto_neither_names_offset_and_line(tmp_path: Path) -> None:
    data = "张三\n李四\n".encode("gbk") + b"\x81\x20" + b"\n"
    with pytest.raises(DecodeFailure) as exc:
        detect_encoding(_write(tmp_path, data))
    assert exc.value.offset == 10 and exc.value.line == 3
    assert "byte offset 10" in str(exc.value) and "neither UTF-8 nor GB18030" in str(exc.value)


@pytest.mark.parametrize("codec", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("block", [1, 2, 3, 5, 4096])
def test_lines_round_trip_across_block_boundaries(codec: str, block: int) -> None:
    text = (TEXT + (RARE if codec != "gbk" else "")) * 3
    lines = list(iter_lines(io.BytesIO(text.encode(codec)), codec, block))
    assert "".join(lines) == text
    assert all(line.endswith("\n") for line in lines[:-1])
    assert lines[1] == "11010519491231002X,张三\n"


def test_only_newline_splits_lines() -> None:
    text = "a\rb\x1cc\u2028d\ne"
    assert list(iter_lines(io.BytesIO(text.encode()), "utf-8")) == ["a\rb\x1cc\u2028d\n", "e"]


@pytest.mark.parametrize("block", [1, 7, 4096])
def test_declared_gbk_undecodable_names_offset_and_line(block: int) -> None:
    data = "姓名\n张三\n".encode("gbk") + b"ab\xff\xfe\n"
    with pytest.raises(DecodeFailure) as exc:
        list(iter_lines(io.BytesIO(data), "gbk", block))
    assert (exc.value.offset, exc.value.line, exc.value.encoding) == (12, 3, "gbk")


def test_gbk_is_strict_where_gb18030_is_wider() -> None:
    data = RARE.encode("gb18030")
    assert "".join(iter_lines(io.BytesIO(data), "gb18030")) == RARE
    with pytest.raises(DecodeFailure):
        list(iter_lines(io.BytesIO(data), "gbk"))


def test_truncated_utf8_at_end_of_file() -> None:
    with pytest.raises(DecodeFailure) as exc:
        list(iter_lines(io.BytesIO(b"ok\n\xe4\xb8"), "utf-8", 1))
    assert (exc.value.offset, exc.value.line) == (3, 2)


def test_transcoding_reader_yields_utf8() -> None:
    src = ('<?xml version="1.0" encoding="GBK"?><r>' + "张三" * 1000 + "</r>").encode("gbk")
    reader = TranscodingReader(io.BytesIO(src), "gbk", block_bytes=5)
    out = b"".join(iter(lambda: reader.read(7), b""))
    assert out.decode("utf-8") == src.decode("gbk")


_CHARS = "公民身份号码张三李四赵钱孙𠀀䶮鿏€abc,0123\r\n"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=_CHARS, max_size=60),
    codec=st.sampled_from(["gbk", "gb18030", "utf-8", "utf-8-sig"]),
    junk=st.lists(st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=3)), max_size=2),
    block=st.integers(1, 40),
    piece=st.integers(1, 9),
)
def test_decoding_in_blocks_and_pieces_is_decoding_whole(
    text: str, codec: str, junk: list[tuple[int, bytes]], block: int, piece: int
) -> None:
    """Blocks of `block` bytes decoded `piece` bytes per call give exactly what decoding
    the whole stream gives: the same text, or a failure at the same byte and line."""
    import etl.extract.encoding as enc

    data = text.encode(codec, errors="ignore")  # gbk has no 𠀀 or €: left out
    for at, raw in junk:  # bytes that may not decode, anywhere
        at = min(at, len(data))
        data = data[:at] + raw + data[at:]
    body = data[3:] if codec == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else data
    whole_codec = "utf-8" if codec == "utf-8-sig" else codec
    old_piece = enc.DECODE_PIECE_BYTES
    enc.DECODE_PIECE_BYTES = piece
    try:
        try:
            expected = body.decode(whole_codec)
        except UnicodeDecodeError as exc:
            with pytest.raises(DecodeFailure) as failure:
                list(enc.iter_decoded_blocks(io.BytesIO(data), codec, block))
            skipped = len(data) - len(body)
            assert failure.value.offset == skipped + exc.start
            assert failure.value.line == 1 + body.count(b"\n", 0, exc.start)
        else:
            assert "".join(enc.iter_decoded_blocks(io.BytesIO(data), codec, block)) == expected
    finally:
        enc.DECODE_PIECE_BYTES = old_piece


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=_CHARS + "\u00e9\u0800\U0001f600", max_size=60),
    junk=st.lists(st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=3)), max_size=2),
    block=st.integers(1, 12),
)
def test_fast_utf8_check_agrees_with_decoding(
    tmp_path_factory: pytest.TempPathFactory, text: str, junk: list[tuple[int, bytes]], block: int
) -> None:
    """Arrow's UTF-8 check over blocks cut before the last character says "valid" exactly
    when Python's strict decoder does (which then finds the bad byte)."""
    import etl.extract.encoding as enc

    data = text.encode("utf-8")
    for at, raw in junk:
        at = min(at, len(data))
        data = data[:at] + raw + data[at:]
    path = tmp_path_factory.mktemp("utf8") / "f.txt"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    old = enc.BLOCK_BYTES
    enc.BLOCK_BYTES = block
    try:
        assert enc._valid_utf8(path) == valid
    finally:
        enc.BLOCK_BYTES = old
