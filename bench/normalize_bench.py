"""Throughput of etl.normalize.normalize on synthetic person rows (not part of the test run).

    .venv/bin/python bench/normalize_bench.py [rows]     # default 1,000,000

Builds a ps_hukou-shaped raw frame (text only, mixed formats and ~5% defects),
then prints rows/s for normalize() and per transform.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from stdnum.cn import ric

from etl.contracts import get_contracts
from etl.normalize import TRANSFORMS, normalize


def raw_person(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = 20_000  # distinct valid IDs, tiled (building 1M checks in Python would dominate the setup)
    days = rng.integers(0, 36_000, base)
    births = (np.datetime64("1920-01-01") + days.astype("timedelta64[D]")).astype(str)
    ids = []
    for b, s in zip(births, rng.integers(0, 1000, base), strict=True):
        body = f"110105{b.replace('-', '')}{s:03d}"
        ids.append(body + ric.calc_check_digit(body + "0"))
    idx = rng.integers(0, base, n)
    id_col = np.asarray(ids, dtype=object)[idx]
    bad = rng.random(n) < 0.05
    id_col[bad] = np.char.add(np.asarray(id_col[bad], dtype=str), "1").astype(object)
    birth = np.asarray(births, dtype=object)[idx]
    fmt = rng.integers(0, 3, n)
    birth = np.where(fmt == 1, np.char.replace(np.asarray(birth, dtype=str), "-", ""), birth)
    return pd.DataFrame(
        {
            "_source": "ps_hukou", "_batch_id": "bench", "_row_number": np.arange(1, n + 1).astype(str),
            "_row_error": None,
            "公民身份号码": id_col, "姓名": rng.choice(["张三", "李 四", "王五", "阿依古丽・买买提"], n),
            "性别": rng.choice(["男", "女", "1", "2"], n), "出生日期": birth,
            "民族": rng.choice(["汉族", "01", "回族", "蒙古族"], n),
            "户籍地行政区划": rng.choice(["110105", "110101", "310104"], n),
            "住址": rng.choice(["北京市朝阳区建国路１号", "上海市 黄浦区 南京东路 100号"], n),
            "联系电话": rng.choice(["13812345678", "+86 139 0000 1111", "010-12345678"], n),
            "婚姻状况": rng.choice(["已婚", "未婚", "20", "离婚"], n),
        }
    ).astype("str")  # fmt: skip


def main(n: int) -> None:
    c = get_contracts()
    src, table = c.source("ps_hukou"), c.table_of("ps_hukou")
    raw = raw_person(n)
    normalize(raw.head(1000), src, table)  # warm caches (reference lists)
    t0 = time.perf_counter()
    res = normalize(raw, src, table)
    dt = time.perf_counter() - t0
    print(f"normalize person: {n:,} rows in {dt:.2f}s = {n / dt:,.0f} rows/s; errors {len(res.errors):,}")
    for f in src.fields:
        for t in f.transforms:
            t0 = time.perf_counter()
            TRANSFORMS[t](raw[f.name])
            dt = time.perf_counter() - t0
            print(f"  {t:<15} {n / dt:>14,.0f} values/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
