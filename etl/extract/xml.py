"""XML: streaming lxml iterparse over every `record_tag` element, at any depth.

One record per element: each child element's text by its local name (text
exactly, an empty element <xm/> is "", an absent one null), attributes of the
record as "@name", attributes of a child as "child@name", grandchildren as
"child.grandchild". A repeated child keeps its first value in the column; the
others go to `_extra` and flag the row. Decoding is govbase's (strict, with
offsets; see encoding.py), the XML declaration's encoding is overridden.
Entities are not resolved and nothing is fetched from the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
from lxml import etree

from etl.extract.common import DictBuffer, ReadContext, check_new_columns
from etl.extract.encoding import TranscodingReader


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


def _record(el: etree._Element) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    out: dict[str, str | None] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in el.attrib.items():
        out["@" + _local(name)] = value
    _children(el, "", out, repeated)
    return out, repeated


def _children(
    el: etree._Element, prefix: str, out: dict[str, str | None], repeated: dict[str, list[str]]
) -> None:
    for child in el:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        name = prefix + _local(child.tag)
        for attr, value in child.attrib.items():
            out[f"{name}@{_local(attr)}"] = value
        if any(isinstance(c.tag, str) for c in child):
            _children(child, name + ".", out, repeated)
            continue
        text = "".join(child.itertext())
        if name in out:
            repeated.setdefault(name, []).append(text)
        else:
            out[name] = text


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    assert src.record_tag
    buf = DictBuffer(src.field_names)
    seen: set[str] = set()
    row = 0
    with ctx.path.open("rb") as fh:
        events = etree.iterparse(
            TranscodingReader(fh, ctx.codec),
            events=("end",),
            tag=("{*}" + src.record_tag, src.record_tag),
            encoding="utf-8",
            huge_tree=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
        )
        try:
            for _, el in events:
                row += 1
                record, repeated = _record(el)
                error = extra = None
                line = el.sourceline
                if repeated:
                    error = ctx.flag(
                        row, "repeated element(s): " + ", ".join(sorted(repeated)), "repeated_element", line
                    )
                    extra = json.dumps(repeated, ensure_ascii=False)
                new = buf.new_keys(record)
                if new:
                    check_new_columns(ctx, new, row=row)
                seen.update(record)
                buf.add(record, row, error, extra, line)
                # free what was parsed: memory stays flat however many records
                el.clear(keep_tail=False)
                parent = el.getparent()
                while parent is not None and el.getprevious() is not None:
                    del parent[0]
                if len(buf) >= chunk_rows:
                    yield buf.take()
        except etree.XMLSyntaxError as exc:  # lineno 0: libxml2 did not say (e.g. an undefined entity)
            raise ctx.error(
                f"malformed XML: {exc.msg}", kind="malformed", row=row + 1, line=exc.lineno or None
            ) from None
    if row:
        missing = [f.name for f in src.fields if f.required and f.name not in seen]
        if missing:
            raise ctx.error(
                f"missing declared element(s) in every record: {', '.join(missing)}", kind="missing_column"
            )
    else:
        ctx.warn(f"empty file: no <{src.record_tag}> records", kind="empty")
    if len(buf) or row == 0:
        yield buf.take()
