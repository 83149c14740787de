"""Wall time of the `fnn` commands that must answer at once, and whether they import JAX.

    python scripts/time_cli.py [--repeat 5]

Each command runs `--repeat` times in a fresh interpreter (``python -X importtime -m fnn.cli ...``),
the commands interleaved so that a busy machine slows them alike; prints the median and the range
of the wall times, a bare ``python -c pass`` for scale, and whether JAX appeared in the import log.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [["list"], ["--help"], ["run", "--help"], ["run", "ch5_train_neuralnett"],
            ["run", "ch5_train_neuralnet", "--help"], ["gradcheck", "--help"]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    runs = {"python -c pass": [sys.executable, "-c", "pass"],
            **{"fnn " + " ".join(c): [sys.executable, "-m", "fnn.cli", *c] for c in COMMANDS}}
    times: dict[str, list[float]] = {name: [] for name in runs}
    jax = {}
    for _ in range(args.repeat):
        for name, cmd in runs.items():
            t0 = time.perf_counter()
            proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True)
            times[name].append(time.perf_counter() - t0)
            jax[name] = any(line.rstrip().endswith((" jax", " jaxlib")) for line in proc.stderr.splitlines())
    width = max(map(len, runs))
    print(f"{'command':<{width}}  median s  (min - max)   imports JAX")
    for name, ts in times.items():
        print(f"{name:<{width}}  {statistics.median(ts):8.2f}  ({min(ts):.2f} - {max(ts):.2f})  {jax[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
