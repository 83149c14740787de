"""Whole experiments against their training steps and against the book's own scripts, side by side.

    python scripts/time_experiments.py --book1 DIR --book2 DIR [--data DIR] [--only NAME ...]
                                       [--repeat 2] [--markdown FILE]

For each full-mode experiment that has a script in the books' repositories (`PAIRS`), on this
machine, one after the other so that they do not share the cores:

* ``fnn run NAME`` in a fresh process, its whole wall time: once with an empty compilation cache
  of its own (reported as "first run": what a user's first run pays), then `--repeat` times with
  that cache warm;
* the seconds its training took, from its ``result.json`` (`PAIRS` names the entry: the
  experiment's own timer around training, compilation of the training step included), and the
  seconds of the rest of its own timed work (the evaluations between epochs that `fit` times
  apart, a timed numerical gradient): what is left of the whole is the fixed cost of a process
  (Python, imports, data, tracing, the figure);
* the book's script, ``python SCRIPT`` in its chapter's folder (``MPLBACKEND=Agg``, so its
  ``plt.show()`` returns at once), `--repeat` times, after one run that converts the data
  sets into the book's cached form (``mnist.pkl``, ``ptb.train.npy``), which is not timed.

`--book1` / `--book2` are checkouts of oreilly-japan/deep-learning-from-scratch and -2; the
MNIST files and PTB from `--data` (default ``$FNN_DATA_DIR``) are copied into their ``dataset/``
folders, where the book's loaders look before they download. Prints a table (median and range of
each) and writes it as Markdown with `--markdown`. The two sides do not always do the same work:
the `note` of each pair says where they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name, fnn options, the result.json entries (dotted paths) that sum to its training time, the entries
# that sum to the rest of its own timed work (evaluation between epochs, a timed numerical gradient),
# (which book, its script), what differs between the two
PAIRS = [
    ("ch4_train_neuralnet", [], ["metrics.train_seconds"],
     ["history.eval_seconds", "metrics.one_step.numerical_seconds", "metrics.one_step.backprop_seconds"],
     ("book1", "ch04/train_neuralnet.py"),
     "fnn also times one numerical-gradient step of the 784-50-10 net (the book's script does not)"),
    ("ch5_train_neuralnet", [], ["metrics.train_seconds"], ["history.eval_seconds"],
     ("book1", "ch05/train_neuralnet.py"), "same work"),
    ("ch6_optimizer_compare_mnist", ["--optimizers", "SGD", "Momentum", "AdaGrad", "Adam"],
     [f"metrics.{o}.train_seconds" for o in ("SGD", "Momentum", "AdaGrad", "Adam")], [],
     ("book1", "ch06/optimizer_compare_mnist.py"),
     "the book's four optimizers; fnn also evaluates each network's test accuracy (in its training time)"),
    ("dlfs2_ch5_simple_rnnlm", [], ["metrics.train_seconds"], [], ("book2", "ch05/train.py"), "same work"),
    ("dlfs2_ch7_train_seq2seq", ["--runs", "baseline"], ["metrics.train_seconds.baseline"], [],
     ("book2", "ch07/train_seq2seq.py"),
     "both train the baseline Seq2seq 25 epochs and answer the 5,000 test questions after each (fnn in "
     "one batch, the book one by one: in its training time); fnn also answers 5,000 training questions "
     "after each epoch"),
]


def _get(tree: dict, path: str):
    for part in path.split("."):
        tree = tree[part]
    return tree


def _run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"time_experiments: {' '.join(cmd)} (in {cwd or os.getcwd()}) failed with exit "
                         f"status {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


MNIST = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")
PTB = ("train", "valid", "test")


def prepare_books(book1: Path, book2: Path, data: Path) -> None:
    """Copy MNIST and PTB where the books' loaders look, and let them build their caches."""
    for name in MNIST:
        if not (book1 / "dataset" / name).exists():
            shutil.copy(data / "mnist" / name, book1 / "dataset" / name)
    for split in PTB:
        if not (book2 / "dataset" / f"ptb.{split}.txt").exists():
            shutil.copy(data / "ptb" / f"ptb.{split}.txt", book2 / "dataset" / f"ptb.{split}.txt")
    _run([sys.executable, "-c", "from dataset.mnist import load_mnist; load_mnist()"], cwd=book1)
    _run([sys.executable, "-c", "from dataset import ptb; ptb.load_data('train')"], cwd=book2)


def stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f}" + (f" [{min(xs):.1f}–{max(xs):.1f}]" if len(xs) > 1 else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--book1", type=Path, required=True, help="checkout of deep-learning-from-scratch")
    p.add_argument("--book2", type=Path, required=True, help="checkout of deep-learning-from-scratch-2")
    p.add_argument("--data", type=Path, default=os.environ.get("FNN_DATA_DIR"),
                   help="fnn's data folder (default $FNN_DATA_DIR)")
    p.add_argument("--only", nargs="+", help="these experiments only")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--markdown", type=Path, help="also write the table here")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat {args.repeat}: expected at least 1")
    unknown = sorted(set(args.only or ()) - {pair[0] for pair in PAIRS})
    if unknown:
        p.error(f"--only {' '.join(unknown)}: not timed here; expected some of {', '.join(pair[0] for pair in PAIRS)}")
    if args.data is None:
        p.error("no data folder: pass --data or set FNN_DATA_DIR")
    data = args.data.resolve()
    missing = [f for f in (*(data / "mnist" / n for n in MNIST), *(data / "ptb" / f"ptb.{s}.txt" for s in PTB))
               if not f.is_file()]
    books = {"book1": args.book1.resolve(), "book2": args.book2.resolve()}
    missing += [books[b] / "dataset" for b in books if not (books[b] / "dataset").is_dir()]
    if missing:
        p.error("not found: " + ", ".join(map(str, missing)) + " (--data: fnn's data folder; --book1/--book2: "
                "checkouts of the books' repositories)")
    prepare_books(books["book1"], books["book2"], data)
    env = {**os.environ, "FNN_DATA_DIR": str(data), "MPLBACKEND": "Agg"}
    rows = []
    for name, options, train_paths, other_paths, (book, script), note in PAIRS:
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "fnn.cli", "run", name, *options, "--out", tmp, "--no-progress"]
            env["FNN_COMPILE_CACHE"] = str(Path(tmp) / "xla")  # empty: the first run compiles as a user's does
            first = _run(cmd, env=env)
            whole, steps, other, book_times = [], [], [], []
            for _ in range(args.repeat):
                whole.append(_run(cmd, env=env))
                result = json.loads((Path(tmp) / "result.json").read_text())
                steps.append(sum(_get(result, path) for path in train_paths))
                other.append(sum(_get(result, path) for path in other_paths))
                folder = books[book] / Path(script).parent
                book_times.append(_run([sys.executable, Path(script).name], cwd=folder, env=env))
        row = {"experiment": name, "options": " ".join(options), "book_script": script, "note": note,
               "first": first, "whole": whole, "steps": steps, "other": other, "book": book_times,
               "whole_over_steps": statistics.median(whole) / statistics.median(steps),
               "whole_over_timed": statistics.median(whole)
               / statistics.median([a + b for a, b in zip(steps, other, strict=True)]),
               "book_over_whole": statistics.median(book_times) / statistics.median(whole)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = ["| experiment | book script | fnn first run, s | fnn whole (warm cache), s | its training, s | "
             "its other timed work, s | whole / training | whole / (training + other) | book script, s | "
             "book / fnn whole | what differs |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| `{r['experiment']}` {r['options']} | {r['book_script']} | {r['first']:.1f} | "
                     f"{stats(r['whole'])} | {stats(r['steps'])} | {stats(r['other']) if any(r['other']) else '–'} | "
                     f"{r['whole_over_steps']:.2f} | {r['whole_over_timed']:.2f} | "
                     f"{stats(r['book'])} | {r['book_over_whole']:.2f}x | {r['note']} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
