"""Run every experiment's quick mode as a user's first run would, with its output in a log (not a
terminal); record how long each took and check the log: progress as plain lines, no carriage return.

    python scripts/quick_times.py [--only NAME ...] [--machine "2 busy CPU cores"] [--write]

Each experiment runs in its own process, ``fnn run NAME --quick``, with a fresh (empty) compile
cache, so the time includes compiling as a first run does. Prints a table (seconds, CPU seconds,
the load average, status, the number of progress lines, carriage returns in the log) and, with
``--write``, stores the seconds in ``experiments/quick_seconds.json``, which
``fnn run NAME --help`` quotes for ``--quick`` (`fnn.cli.quick_time`). The machine is whatever
runs this: say which with ``--machine``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fnn import cli

ROOT = Path(__file__).resolve().parents[1]
# A progress line of fnn.progress in a log: "DESC: epoch 3/20 ..." or "DESC: step 99/2970 ...".
PROGRESS_LINE = re.compile(r"^.+: (epoch|step|coord\w*) \d+/\d+")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _write(machine: str, seconds: dict) -> None:
    path = ROOT / "experiments" / cli.QUICK_TIMES
    old = json.loads(path.read_text()) if path.exists() else {"seconds": {}}
    table = {"machine": machine, "command": "python scripts/quick_times.py --write",
             "seconds": dict(sorted({**old.get("seconds", {}), **seconds}.items()))}
    path.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="these experiments only")
    p.add_argument("--machine", default=f"{os.cpu_count()} CPU cores", help="where it ran, for the help text")
    p.add_argument("--write", action="store_true", help="update experiments/quick_seconds.json")
    args = p.parse_args(argv)
    names = args.only or list(cli.experiments())
    env = {k: v for k, v in os.environ.items() if k not in ("FNN_PROGRESS", "FNN_DATA_DIR")}
    rows, seconds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            env["FNN_COMPILE_CACHE"] = str(Path(tmp) / "xla" / name)  # empty: compiled as a first run
            t0, cpu0 = time.perf_counter(), _children_cpu()
            proc = subprocess.run([sys.executable, "-m", "fnn.cli", "run", name, "--quick", "--out",
                                   str(Path(tmp) / name)], capture_output=True, text=True, env=env)
            took, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            log = proc.stdout + proc.stderr
            lines = sum(bool(PROGRESS_LINE.match(line)) for line in log.splitlines())
            status = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
            rows.append((name, took, status, lines, log.count("\r")))
            if proc.returncode == 0:
                seconds[name] = round(took, 1)
                if args.write:  # after each: a long run stopped half-way keeps what it measured
                    _write(args.machine, seconds)
            else:
                print(proc.stderr[-1500:], file=sys.stderr)
            print(f"{name:<40} {took:7.1f} s  (CPU {cpu:6.1f} s, load {os.getloadavg()[0]:4.1f})  {status:<12} "
                  f"progress lines {lines:4d}  CR {log.count(chr(13))}", flush=True)
    return 1 if any(r[2] != "ok" or r[4] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
