"""Text encodings of delivered files: detection and strict, offset-aware decoding.

Rule for `encoding: auto` (deterministic, so a rerun decodes the same way):
1. a byte order mark decides (UTF-8 BOM -> utf-8-sig; UTF-16/32 BOMs are refused);
2. otherwise the whole file is tried as strict UTF-8;
3. otherwise as strict GB18030 (a superset of GBK and GB2312);
4. otherwise the file is refused, naming the first undecodable byte.

Step 2 is checked by Arrow's vectorized UTF-8 validator (Python's decoder only
runs to find the bad byte of a file that is not UTF-8). Step 3 decodes the whole
file. For readers that decode through this module's strict block decoder anyway
(CSV, JSON lines, fixed-width), the extract stage skips the separate GB18030 pass:
the read is the check, and a byte that is neither is reported as the rule reports
it (`Detected.explain`). Such a file fails at the first problem the read meets,
which may then be a ragged header or bad JSON before the bad byte.

A probabilistic detector (charset_normalizer) was considered and not used: on
short Chinese text it can answer big5 or cp1252, and the three encodings
departments actually deliver are told apart exactly by the rule above.

Nothing is ever decoded with errors ignored or replaced. A byte that does not
decode raises `DecodeFailure` carrying the 0-based byte offset in the file and
the 1-based physical line, so the caller can name them.

Decoding is done a block at a time; a character cut by a block boundary is
carried over to the next block.

Mixed encodings: UTF-8 Chinese inside a file decoded as GBK/GB18030 mostly
decodes (three UTF-8 bytes make one and a half plausible, wrong characters), so
the strict decode cannot see it. Each block of such a file is checked
(`utf8_inside`): a line that is valid UTF-8 and holds UTF-8 Chinese raises
`MixedEncoding` naming its line and offset. It is cheap: a line of UTF-8 Chinese
almost always holds bytes 0x80-0xA0 (half of UTF-8's continuation bytes), which
GBK's common characters (GB2312) never do, so only the lines holding such bytes
(rare GBK characters, or UTF-8) are looked at. One UTF-8 character whose two
continuation bytes both lie in 0xA1-0xBF is not seen; a line of several is.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 4 * 1024 * 1024

#: encodings the contracts may declare, as Python codec names
DECLARED = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gbk", "gb18030": "gb18030"}

_UTF8_BOM = codecs.BOM_UTF8
_REFUSED_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE"),
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)


class DecodeFailure(Exception):
    """Bytes that do not decode in `encoding`: at `offset` (0-based, in the file), on `line` (1-based)."""

    def __init__(self, encoding: str, offset: int, line: int, bad: bytes, reason: str) -> None:
        self.encoding, self.offset, self.line, self.bad, self.reason = encoding, offset, line, bad, reason
        super().__init__(
            f"undecodable bytes {bad!r} at byte offset {offset} (line {line}) for encoding {encoding}: {reason}"
        )


class MixedEncoding(DecodeFailure):
    """A file decoded as GBK/GB18030 holds a line of UTF-8 Chinese: it decodes, into wrong
    but plausible characters, so the strict decode alone cannot see it."""

    def __init__(self, encoding: str, offset: int, line: int, bad: bytes) -> None:
        reason = "mixed encodings: the line is UTF-8 (Chinese in UTF-8) in a file decoded as " + encoding
        super().__init__(encoding, offset, line, bad, reason)
        Exception.__init__(
            self,
            f"UTF-8 text at byte offset {offset} (line {line}) in a file decoded as {encoding}: "
            "mixed encodings; deliver the file in one encoding",
        )


class UnsupportedEncoding(Exception):
    """The file is in an encoding govbase does not read (e.g. UTF-16)."""


@dataclass(frozen=True)
class Detected:
    """The codec to decode a file with, and how it was chosen.

    how "gb18030-assumed" (detect_encoding with verify=False): the file is not UTF-8
    (`utf8_failure` says where) and was not decoded as GB18030 yet; the caller's strict
    read is the check, and `explain` turns its DecodeFailure into the auto rule's.
    """

    codec: str  # Python codec name: utf-8, utf-8-sig, gbk, gb18030
    how: str  # declared | bom | utf-8-valid | gb18030-valid | gb18030-assumed | empty
    utf8_failure: DecodeFailure | None = None

    def explain(self, failure: DecodeFailure) -> DecodeFailure:
        """A failure of the read, as the auto rule reports it when it had assumed GB18030."""
        if self.how != "gb18030-assumed" or self.utf8_failure is None or isinstance(failure, MixedEncoding):
            return failure  # a mixed file did decode as GB18030: it is no case of "neither"
        return _neither(failure, self.utf8_failure)


def _neither(gb_failure: DecodeFailure, utf8_failure: DecodeFailure) -> DecodeFailure:
    return DecodeFailure(
        "auto (neither UTF-8 nor GB18030)",
        gb_failure.offset,
        gb_failure.line,
        gb_failure.bad,
        f"{gb_failure.reason}; as UTF-8 the first bad byte is at offset {utf8_failure.offset} "
        f"(line {utf8_failure.line})",
    )


def _bom(head: bytes) -> str | None:
    if head.startswith(_UTF8_BOM):
        return "utf-8-sig"
    for bom, name in _REFUSED_BOMS:
        if head.startswith(bom):
            raise UnsupportedEncoding(f"file starts with a {name} byte order mark; deliver UTF-8 or GB18030")
    return None


def validate(path: Path, codec: str) -> None:
    """Decode the whole file strictly (streaming); raise DecodeFailure at the first bad byte."""
    if codec == "utf-8" and _valid_utf8(path):
        return
    with path.open("rb") as fh:
        for _ in iter_decoded_blocks(fh, codec):
            pass


def _valid_utf8(path: Path) -> bool:
    """Whether the file is valid UTF-8, checked by Arrow's vectorized validator (about 4x
    faster than decoding it). Blocks are cut before the last character that starts in
    them, so no character is split. False says "not valid": the caller's strict decode
    then finds where (and stays the authority)."""
    import numpy as np
    import pyarrow as pa

    carry = b""
    with path.open("rb") as fh:
        while True:
            data = fh.read(BLOCK_BYTES)
            block = carry + data if carry else data
            if not block:
                return True
            cut = len(block)
            if data:  # not the end: the last character may continue in the next block
                cut -= 1
                while cut > 0 and cut > len(block) - 4 and block[cut] & 0xC0 == 0x80:
                    cut -= 1
            piece, carry = block[:cut], block[cut:]
            offsets = pa.py_buffer(np.array([0, len(piece)], dtype=np.int64))
            try:
                pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(piece)]).validate(
                    full=True
                )
            except pa.ArrowInvalid:
                return False
            if not data:
                return True  # the last block (with the carried bytes) was valid


def detect_encoding(path: Path, declared: str = "auto", *, verify: bool = True) -> Detected:
    """The codec for `path`: the declared one, else the auto rule of this module.

    Raises DecodeFailure when auto finds neither UTF-8 nor GB18030 (naming the
    first byte GB18030 can't decode), UnsupportedEncoding for UTF-16/32 BOMs.
    A declared encoding is not validated here: decoding is strict anyway.
    With verify=False, a file that is not UTF-8 is not decoded as GB18030 here: the
    answer is gb18030-assumed, and the caller, which decodes the file strictly anyway,
    reports a failure through `Detected.explain` (one full decode saved).
    """
    if declared != "auto":
        return Detected(DECLARED[declared], "declared")
    with path.open("rb") as fh:
        head = fh.read(4)
    if not head:
        return Detected("utf-8", "empty")
    bom = _bom(head)
    if bom:
        return Detected(bom, "bom")
    try:
        validate(path, "utf-8")
        return Detected("utf-8", "utf-8-valid")
    except DecodeFailure as utf8_failure:
        if not verify:
            return Detected("gb18030", "gb18030-assumed", utf8_failure)
        try:
            validate(path, "gb18030")
        except DecodeFailure as gb_failure:
            raise _neither(gb_failure, utf8_failure) from None
        return Detected("gb18030", "gb18030-valid")


#: Bytes per decode call. A decode call holds the GIL from start to end; in pieces of
#: this size a writer thread (Parquet, etl.background) gets it often enough to keep going.
DECODE_PIECE_BYTES = 1024 * 1024


def _decode_in_pieces(block: bytes, codec: str) -> tuple[str, bytes | None]:
    """`block` decoded strictly, DECODE_PIECE_BYTES per call: (text, the bytes of a character
    cut at the end of the block, b"" if none), or ("", None) if the block has a bad byte."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        parts = [
            decoder.decode(block[i : i + DECODE_PIECE_BYTES])
            for i in range(0, len(block), DECODE_PIECE_BYTES)
        ]
    except UnicodeDecodeError:
        return "", None
    return "".join(parts), decoder.getstate()[0]


#: a character of the CJK blocks (U+3000-U+9FFF) in UTF-8
_UTF8_CJK = re.compile(rb"[\xe3-\xe9][\x80-\xbf][\x80-\xbf]")


def utf8_inside(block: bytes) -> int | None:
    """Offset in `block` (bytes of a GBK/GB18030 file) of the first line that is valid UTF-8
    holding UTF-8 Chinese, or None (see the module docstring). The bytes 0x80-0xA0 are
    found by numpy (one pass, no Python object per byte); only their lines are decoded."""
    import numpy as np

    a = np.frombuffer(block, dtype=np.uint8)
    checked_to = -1  # the end of the last line looked at
    for p in np.flatnonzero((a - np.uint8(0x80)) < 0x21).tolist():
        if p < checked_to:
            continue
        start = block.rfind(b"\n", 0, p) + 1
        end = block.find(b"\n", p)
        end = len(block) if end < 0 else end
        checked_to = end
        line = block[start:end]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _UTF8_CJK.search(line):
            return start
    return None


def iter_decoded_blocks(fh: BinaryIO, codec: str, block_bytes: int = BLOCK_BYTES) -> Iterator[str]:
    """Decode a binary stream strictly, yielding text blocks (cut anywhere between characters).

    A UTF-8 BOM is dropped only for utf-8-sig. Raises DecodeFailure with the
    byte offset and line of the first undecodable byte.
    """
    offset = 0  # file offset of the start of `pending`
    line = 1  # physical line at the start of `pending`
    pending = b""
    first = True
    decode_codec = "utf-8" if codec == "utf-8-sig" else codec
    check_mixed = codec in ("gbk", "gb18030")
    while True:
        data = fh.read(max(block_bytes, 4) if first else block_bytes)
        if first:
            first = False
            if codec == "utf-8-sig" and data.startswith(_UTF8_BOM):
                data = data[len(_UTF8_BOM) :]
                offset = len(_UTF8_BOM)
        final = not data
        block = pending + data if pending else data
        pending = b""
        if not block:
            return
        text, tail = _decode_in_pieces(block, decode_codec)
        if tail is not None and (not tail or (not final and len(tail) <= 3)):
            if tail:  # a character cut by the block boundary: its bytes go to the next block
                pending = tail
                block = block[: -len(tail)]
        else:
            # a bad byte somewhere, or a cut character at the end of the file: decode the
            # block whole, which says where
            try:
                text = block.decode(decode_codec)
            except UnicodeDecodeError as exc:
                bad_line = line + block.count(b"\n", 0, exc.start)
                raise DecodeFailure(
                    codec, offset + exc.start, bad_line, block[exc.start : exc.end], exc.reason
                ) from None
        if check_mixed and (at := utf8_inside(block)) is not None:
            raise MixedEncoding(codec, offset + at, line + block.count(b"\n", 0, at), block[at : at + 12])
        offset += len(block)
        line += text.count("\n")
        if text:
            yield text
        if final:
            return


def iter_lines(fh: BinaryIO, codec: str, block_bytes: int = BLOCK_BYTES) -> Iterator[str]:
    """Decoded physical lines, each keeping its line ending ("\\n" or "\\r\\n"); only "\\n" ends a line.

    str.splitlines is not used on purpose: it also breaks on \\r, \\x0b, \\x1c,
    U+2028 ..., which can occur inside a delivered value.
    """
    rest: list[str] = []  # pieces of a line spanning blocks (a list: no quadratic concatenation)
    for block in iter_decoded_blocks(fh, codec, block_bytes):
        parts = block.split("\n")
        if len(parts) == 1:
            rest.append(parts[0])
            continue
        if rest:
            rest.append(parts[0])
            parts[0] = "".join(rest)
        rest = [parts.pop()]
        for p in parts:
            yield p + "\n"
    tail = "".join(rest)
    if tail:
        yield tail


class TranscodingReader:
    """A binary file object yielding UTF-8 bytes of a file decoded strictly with `codec`.

    Lets lxml parse GBK/GB18030 XML while govbase, not libxml2, owns decoding
    and its error messages (offset and line of the first bad byte).
    """

    def __init__(self, fh: BinaryIO, codec: str, block_bytes: int = BLOCK_BYTES) -> None:
        self._blocks = iter_decoded_blocks(fh, codec, block_bytes)
        self._buf = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            out = self._buf[self._pos :] + b"".join(b.encode("utf-8") for b in self._blocks)
            self._buf, self._pos = b"", 0
            return out
        if self._pos >= len(self._buf):
            block = next(self._blocks, None)
            if block is None:
                return b""
            self._buf, self._pos = block.encode("utf-8"), 0
        out = self._buf[self._pos : self._pos + size]
        self._pos += len(out)
        return out
