"""The book's seq2seq with reversed input, run by its own code for several seeds: how much its
accuracy after 25 epochs depends on the draw (DLFS2 §7.4.1, ch07/train_seq2seq.py).

    python scripts/book_seq2seq_seeds.py --dlfs2 REPO [--seeds book 2 3 4 5] [--peeky-seeds book]
                                         [--epochs 25] [--out tests/reference/book_seq2seq_reversed.json]

REPO is a git repository of deep-learning-from-scratch-2 (a bare mirror is enough); its HEAD is
extracted into a temporary folder. Each seed runs in its own process, in that folder's ``ch07``,
what the book's ``train_seq2seq.py`` does with ``is_reverse = True``: ``sequence.load_data`` on
``addition.txt``, the questions reversed, ``Seq2seq(vocab, 16, 128)``, ``Trainer(model, Adam())``
one epoch at a time (batch 128, ``max_grad`` 5.0), then ``eval_seq2seq`` on each of the 5,000 test
questions. ``load_data`` seeds NumPy's global generator with 1984, so the script as shipped always
gives one result (seed ``book``); a number N seeds the generator again after ``load_data``, which
draws other initial weights and another order of mini-batches. `--peeky-seeds` runs
``PeekySeq2seq`` on the reversed questions the same way (the book's Fig. 7-27). One thread
(``OMP_NUM_THREADS=1``).

Writes the accuracy after every epoch of each run, the book's commit and the date, as JSON. The
values committed in ``tests/reference/`` came from this driver's calls run on 2026-12-02.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

DRIVER = r"""
import json, sys
sys.path.append('..')
import numpy as np
from dataset import sequence
from common.optimizer import Adam
from common.trainer import Trainer
from common.util import eval_seq2seq
from seq2seq import Seq2seq
from peeky_seq2seq import PeekySeq2seq
seed, epochs, model_class = sys.argv[1], int(sys.argv[2]), sys.argv[3]
(x_train, t_train), (x_test, t_test) = sequence.load_data('addition.txt')
char_to_id, id_to_char = sequence.get_vocab()
if seed != 'book':
    np.random.seed(int(seed))
x_train, x_test = x_train[:, ::-1], x_test[:, ::-1]
model = {'Seq2seq': Seq2seq, 'PeekySeq2seq': PeekySeq2seq}[model_class](len(char_to_id), 16, 128)
trainer = Trainer(model, Adam())
acc = []
for epoch in range(epochs):
    trainer.fit(x_train, t_train, max_epoch=1, batch_size=128, max_grad=5.0, eval_interval=10**9)
    right = sum(eval_seq2seq(model, x_test[[i]], t_test[[i]], id_to_char, False, True) for i in range(len(x_test)))
    acc.append(right / len(x_test))
    print(json.dumps({"epoch": epoch + 1, "acc": acc[-1]}), file=sys.stderr, flush=True)
print(json.dumps(acc))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dlfs2", type=Path, required=True, help="git repository of deep-learning-from-scratch-2")
    p.add_argument("--seeds", nargs="+", default=["book", "2", "3", "4", "5"])
    p.add_argument("--peeky-seeds", nargs="*", default=["book"])
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--out", type=Path, default=Path("tests/reference/book_seq2seq_reversed.json"))
    args = p.parse_args(argv)
    for seed in (*args.seeds, *args.peeky_seeds):
        if seed != "book" and not seed.isdigit():
            p.error(f"--seeds {seed}: expected 'book' or a whole number")
    commit = subprocess.run(["git", "-C", str(args.dlfs2), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    runs = {"Seq2seq": {}, "PeekySeq2seq": {}}
    with tempfile.TemporaryDirectory(prefix="book_seq2seq_") as tmp:
        archive = subprocess.run(["git", "-C", str(args.dlfs2), "archive", "HEAD"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        for model_class, seeds in (("Seq2seq", args.seeds), ("PeekySeq2seq", args.peeky_seeds)):
            for seed in seeds:
                proc = subprocess.run([sys.executable, "-c", DRIVER, seed, str(args.epochs), model_class],
                                      cwd=Path(tmp) / "ch07", env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"book_seq2seq_seeds: {model_class} seed {seed} failed:\n{proc.stderr[-2000:]}")
                runs[model_class][seed] = acc = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{model_class} seed {seed}: accuracy after {args.epochs} epochs {acc[-1]:.4f}", flush=True)
    args.out.write_text(json.dumps({
        "what": "DLFS2 ch07/train_seq2seq.py with is_reverse = True: test accuracy after each epoch, per model "
                "and seed",
        "book_commit": commit, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python scripts/book_seq2seq_seeds.py", "epochs": args.epochs, "accuracy": runs["Seq2seq"],
        "peeky_accuracy": runs["PeekySeq2seq"]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
