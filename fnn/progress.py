"""Progress of long runs: a tqdm bar on a terminal, plain lines in a log (one place decides which).

`fnn.train.fit`, `fnn.multi.fit_many`, `fnn.lm.fit_lm` and the gradient check report their
progress through `bar`::

    with progress.bar(total=epochs, desc="mlp", unit="epoch") as p:
        for epoch in ...:
            ...
            p.update(loss=0.1234, test_acc=0.97)     # one epoch more, and its numbers

Where it goes (`mode`): to stderr; as a tqdm bar when stderr is a terminal (or a Jupyter
notebook), as plain lines otherwise (``fnn run NAME > log 2>&1``, a CI job, a pipe), because a
bar's carriage-return updates pile up on one line of a log. The ``FNN_PROGRESS`` environment
variable overrides the choice: ``bar``, ``log`` or ``off``.

A log gets one line per ``update(..., line=True)`` (an epoch), plus a line at least every 30 s
within a long epoch (updates marked ``line=False``), and never a carriage return::

    mlp: epoch 3/20  loss=0.4512 train_acc=0.8812 test_acc=0.8690  [2.3 s]
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

__all__ = ["MODES", "Progress", "bar", "mode"]

# What `mode` may answer; also the values of FNN_PROGRESS.
MODES = ("bar", "log", "off")
HEARTBEAT = 30.0     # a log line at least this often, even within an epoch


def mode(enabled: bool = True, file: IO[str] | None = None) -> str:
    """``"bar"``, ``"log"`` or ``"off"``: how progress written to `file` (default stderr) shows."""
    if not enabled:
        return "off"
    forced = os.environ.get("FNN_PROGRESS", "").strip().lower()
    if forced in MODES:
        return forced
    file = sys.stderr if file is None else file
    in_notebook = "ipykernel" in sys.modules
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        tty = False
    return "bar" if tty or in_notebook else "log"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


class Progress:
    """A run's progress: `update` after each unit of work, `write` a message, `close` at the end
    (or use it as a context manager). Built by `bar`."""

    def __init__(self, total: int, *, desc: str, unit: str, initial: int, how: str,
                 file: IO[str] | None):
        self.total, self.desc, self.unit, self.n, self.how = total, desc, unit, initial, how
        self.file = sys.stderr if file is None else file
        self.start = self.last_line = time.perf_counter()
        self.lines = 0  # log lines written (updates, not messages)
        self.tqdm = None
        if how == "bar":
            from tqdm.auto import tqdm  # only on a terminal: tqdm takes a while to import

            self.tqdm = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file,
                             dynamic_ncols=True)

    def update(self, n: int = 1, *, line: bool = True, **values: Any) -> None:
        """`n` more units done; `values` (loss, accuracy, ...) shown beside the count. In a log,
        ``line=False`` marks an update inside an epoch: it writes only a 30-s heartbeat line."""
        self.n += n
        if self.tqdm is not None:
            if values:
                self.tqdm.set_postfix({k: _show(v) for k, v in values.items()}, refresh=False)
            self.tqdm.update(n)
        elif self.how == "log":
            now = time.perf_counter()
            if line or now - self.last_line >= HEARTBEAT:
                parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}",
                         " ".join(f"{k}={_show(v)}" for k, v in values.items()),
                         f"[{now - self.start:.1f} s]"]
                self._print("  ".join(part for part in parts if part))
                self.last_line, self.lines = now, self.lines + 1

    def write(self, message: str) -> None:
        """A message on its own line (above the bar on a terminal); nothing when off."""
        if self.tqdm is not None:
            self.tqdm.write(message, file=self.file)
        elif self.how == "log":
            self._print(message)

    def _print(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, *, desc: str, unit: str = "epoch", initial: int = 0, enabled: bool = True,
        file: IO[str] | None = None) -> Progress:
    """Progress over `total` units (`initial` already done, e.g. a resumed run's epochs), shown
    as `mode` decides; ``enabled=False`` shows nothing."""
    return Progress(total, desc=desc, unit=unit, initial=initial, how=mode(enabled, file), file=file)
