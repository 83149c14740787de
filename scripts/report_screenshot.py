"""Screenshot of the report page (``fnn report``) in headless Chromium, for ``docs/report.png``.

    python scripts/report_screenshot.py results/report.html docs/report.png --crop 0:1150 --crop 12050:12830

takes one screenshot 1280 pixels wide and as tall as the lowest crop, and stacks the crops (pixel rows
TOP:BOTTOM of the page, e.g. its top and one experiment's section) one under the other, a grey band
between them. Without ``--crop`` it keeps the page's first 1,700 rows.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mimage  # noqa: E402
import numpy as np  # noqa: E402

WIDTH = 1280  # pixels: the page's main column is 1180 wide
GAP = 12      # pixel rows of grey between two crops


def crop(text: str) -> tuple[int, int]:
    top, bottom = (int(v) for v in text.split(":"))
    if not 0 <= top < bottom:
        raise argparse.ArgumentTypeError(f"--crop wants TOP:BOTTOM with 0 <= TOP < BOTTOM, got {text!r}")
    return top, bottom


def screenshot(browser: str, page: Path, height: int, folder: Path) -> np.ndarray:
    """The page's first `height` pixel rows as an (height, WIDTH, 3) array of floats in [0, 1]."""
    shot = folder / "shot.png"
    run = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--no-first-run", f"--user-data-dir={folder / 'profile'}", f"--screenshot={shot}",
                          f"--window-size={WIDTH},{height}", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0 or not shot.exists():
        sys.exit(f"report_screenshot: {browser} wrote no screenshot:\n{run.stderr[-2000:]}")
    return mimage.imread(shot)[..., :3]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page", type=Path, help="the page fnn report wrote")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--crop", type=crop, action="append", help="TOP:BOTTOM pixel rows to keep (repeatable)")
    p.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                   help="the browser (default: chromium on the PATH)")
    args = p.parse_args(argv)
    if args.browser is None:
        p.error("no Chromium found (Debian: apt-get install chromium); name one with --browser")
    crops = args.crop or [(0, 1700)]
    with tempfile.TemporaryDirectory() as folder:
        pixels = screenshot(args.browser, args.page, max(bottom for _, bottom in crops), Path(folder))
    band = np.full((GAP, WIDTH, 3), 0.8)
    parts = [part for top, bottom in crops for part in (pixels[top:bottom], band)][:-1]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    mimage.imsave(args.out, np.concatenate(parts))
    print(f"wrote {args.out} ({sum(len(part) for part in parts)} x {WIDTH} pixels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
