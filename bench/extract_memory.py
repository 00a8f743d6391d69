"""Peak memory and speed of extracting one large CSV (default ~1 GB, GBK, the ps_hukou layout).

    .venv/bin/python bench/extract_memory.py [--mb 1024] [--keep DIR]

Generates the file under a temporary GOVBASE_HOME, runs the extract of that
one source in a fresh subprocess, and prints the file size, rows, wall time,
rows/s, MB/s and the subprocess's peak RSS (getrusage ru_maxrss). Exit status
1 when the peak RSS reaches 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = "公民身份号码,姓名,性别,出生日期,民族,户籍地行政区划,住址,联系电话,婚姻状况\n"

CHILD = r"""
import json, resource, sys, time
from etl.config import get_settings
from etl.contracts import get_contracts
from etl.extract import extract_source
settings = get_settings(sys.argv[1])
src = get_contracts(settings).source("ps_hukou")
t0 = time.perf_counter()
[res] = extract_source(settings, src)
dt = time.perf_counter() - t0
print(json.dumps({"status": res.status, "rows": res.rows, "flagged": res.flagged_rows, "seconds": dt,
                  "message": res.message,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, megabytes: int) -> int:
    """Write a GBK CSV of about `megabytes` MB; returns its data rows."""
    block_rows = []
    for i in range(20_000):
        block_rows.append(
            f"1101051949123{i % 10000:04d}X,张{'三四五六七'[i % 5]}{'明华'[i % 2]},{'男女'[i % 2]},1949-12-31,汉,110105,"
            f"北京市朝阳区建国路{i}号院{i % 30}号楼,138{i:08d},{['10', '20', '30', '40'][i % 4]}\n"
        )
    block = "".join(block_rows).encode("gbk")
    target = megabytes * 1024 * 1024
    rows = 0
    with path.open("wb") as fh:
        fh.write(HEADER.encode("gbk"))
        written = 0
        while written < target:
            fh.write(block)
            written += len(block)
            rows += len(block_rows)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=1024, help="size of the CSV in MiB (default 1024)")
    ap.add_argument("--keep", type=Path, help="use this GOVBASE_HOME and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="govbase-bench-") as tmp:
        home = args.keep or Path(tmp)
        landing = home / "landing" / "ps_hukou"
        landing.mkdir(parents=True, exist_ok=True)
        csv_path = landing / "hukou_bench.csv"
        rows = generate(csv_path, args.mb)
        size_mb = csv_path.stat().st_size / 1024 / 1024
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(home)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 2
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out.update(
            {
                "file_mb": round(size_mb, 1),
                "expected_rows": rows,
                "rows_per_s": round(out["rows"] / out["seconds"]),
                "mb_per_s": round(size_mb / out["seconds"], 1),
            }
        )
        print(json.dumps(out, ensure_ascii=False))
        ok = out["status"] == "extracted" and out["rows"] == rows and out["peak_rss_mb"] < 1024
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
