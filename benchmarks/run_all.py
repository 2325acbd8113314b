"""`make bench`: every benchmark in one run, each reported as figures and ratios."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_scoring.py", "bench_architectures.py", "bench_device.py", "bench_ingest.py", "bench_pipeline.py", "bench_pages.py", "bench_export.py", "bench_viewer.py", "bench_queue.py", "bench_load.py"]


def main() -> int:
    failed = []
    for name in BENCHES:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n=== {name} ===", flush=True)
        # As modules from the repository root, so each benchmark imports the project like any code.
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{path.stem}"], cwd=HERE.parent)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
