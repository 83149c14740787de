"""What every experiment script shares: arguments, data choice, result.json, figures.

An experiment is ``experiments/<chapter>_<what>.py`` with ``main(argv=None) -> dict``. It parses
``--quick``, ``--seed`` and ``--out`` with `parser`, runs, and writes its PNG figure(s) and a
``result.json`` (`save_result`: config, metrics, seconds, versions) into the output folder
(default ``results/<name>/``). ``--quick`` runs on the embedded digits in seconds; the full mode
uses full MNIST (``$FNN_DATA_DIR/mnist`` or the cache; see `fnn.data`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # experiments write files; they never open windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every experiment has."""
    p = argparse.ArgumentParser(prog=f"fnn run {name}", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="seconds on the embedded digits instead of the full data set")
    p.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default results/{name})")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")
    return p


def output_dir(args: argparse.Namespace, name: str) -> Path:
    """The output folder of this run, created if missing."""
    out = args.out if args.out is not None else Path("results") / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on, and the device it ran on."""
    import jax
    import optax

    import fnn

    return {"fnn": fnn.__version__, "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
            "optax": optax.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "device": str(jax.devices()[0].device_kind),
            "cpu_count": str(os.cpu_count())}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / jax arrays and scalars
        return x.tolist()
    return x


def save_result(out: Path, name: str, args: argparse.Namespace, *, config: dict, metrics: dict,
                seconds: float, **extra) -> Path:
    """Write ``out/result.json`` atomically and return its path.

    Fields: experiment, quick, seed, config, metrics, seconds, created, versions, and `extra`
    (e.g. per-epoch history).
    """
    result = {"experiment": name, "quick": bool(args.quick), "seed": args.seed,
              "config": config, "metrics": metrics, "seconds": round(float(seconds), 3),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "versions": versions(), **extra}
    path = out / "result.json"
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history: dict, title: str) -> plt.Figure:
    """Loss per iteration and train/test accuracy per epoch, side by side (DLFS1 Fig. 4-11, 4-12)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss = np.asarray(history["step_loss"])
    ax_loss.plot(np.arange(1, loss.size + 1), loss, lw=0.6, alpha=0.5, label="mini-batch")
    if loss.size >= 20:
        w = max(loss.size // 50, 5)
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax_loss.plot(np.arange(w, loss.size + 1), smooth, lw=1.5, label=f"mean of {w}")
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax_loss.legend()
    epochs = history["epoch"]
    ax_acc.plot(epochs, history["train_acc"], "o-", ms=3, label="train acc")
    ax_acc.plot(epochs, history["test_acc"], "s--", ms=3, label="test acc")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.0), title="accuracy")
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    return fig


def load_data(args: argparse.Namespace, *, quick: str = "digits28", full: str = "mnist", **kwargs):
    """``((x_train, t_train), (x_test, t_test))``: the embedded `quick` set with ``--quick``,
    otherwise the `full` data set (see `fnn.data.load`)."""
    from fnn import data

    return data.load(quick if args.quick else full, **kwargs)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def report(lines: Sequence[str]) -> None:
    """Print an experiment's summary lines to stdout."""
    for line in lines:
        print(line)
    sys.stdout.flush()
