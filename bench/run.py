"""Run the benchmarks in bench/: all of them, or those named in ONLY."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    wanted = os.environ.get("ONLY", "").split()
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [script for script in scripts if script.stem.removeprefix("bench_") in wanted]
    if not scripts:
        print("bench: no benchmark to run")
        return 0
    failed = 0
    for script in scripts:
        print(f"bench: {script.name}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
