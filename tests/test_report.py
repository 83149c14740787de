"""``fnn report``: the page collects every result.json and figure, needs no other file, compares the
book's numbers with fnn's, and renders in a real browser."""

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mimage
import matplotlib.pyplot as plt
import numpy as np
import pytest

from fnn import cli, report

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """The page's images, links, ids and visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.ids, self.text = [], [], set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        if tag in ("a", "link", "script", "iframe") and ("href" in attrs or "src" in attrs):
            self.links.append(attrs.get("href") or attrs.get("src"))

    def handle_data(self, data):
        self.text.append(data)


def figure(path: Path, colour: str = "tab:blue") -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4], color=colour)
    fig.savefig(path)
    plt.close(fig)


def write_result(folder: Path, name: str, *, metrics: dict, book: dict | None = None, book_ref=None,
                 quick: bool = True, figures: int = 1) -> None:
    folder.mkdir(parents=True)
    result = {"experiment": name, "quick": quick, "seed": 0, "config": {}, "metrics": metrics, "seconds": 1.5,
              "created": "2026-01-01T00:00:00+00:00", "versions": {"fnn": "0.1.0", "jax": "0"},
              "book": book or {}, "book_ref": book_ref}
    (folder / "result.json").write_text(json.dumps(result))
    for i in range(figures):
        figure(folder / f"figure{i}.png")


def images_resolve(page: Page, results: Path, html_file: Path) -> int:
    """Every <img> is a PNG embedded as a data URI (or a file beside the page), and together they are
    exactly the PNGs under `results`; returns how many."""
    shown = []
    for img in page.images:
        src = img["src"]
        if src.startswith("data:image/png;base64,"):
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
        else:
            assert "://" not in src, f"an image from the network: {src[:80]}"
            data = (html_file.parent / src).read_bytes()
        assert data.startswith(PNG), "an image that is not a PNG"
        assert img.get("alt"), "an image without alt text"
        shown.append(data)
    on_disk = sorted(p.read_bytes() for p in results.glob("*/*.png"))
    assert sorted(shown) == on_disk, "the page's images are not the results' figures"
    return len(shown)


def test_report_from_quick_runs(tmp_path):
    results = tmp_path / "results"
    for name in ("ch2_perceptron_gates", "ch4_numerical_diff"):
        assert cli.main(["run", name, "--quick", "--out", str(results / name), "--no-progress"]) == 0
    out = tmp_path / "page" / "report.html"
    assert report.main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert images_resolve(page, results, out) == 2
    assert not [link for link in page.links if "://" in link], "the page must not need the network"
    internal = [link[1:] for link in page.links if link.startswith("#")]
    assert internal and all(target in page.ids for target in internal), "a table-of-contents link leads nowhere"
    visible = " ".join(page.text)
    for expected in ("DLFS1 chapter 2: Perceptrons", "DLFS1 chapter 4: Neural network training",
                     "ch2_perceptron_gates", "DLFS1 §4.3", "Fig. 4-7", "0.1999999999990898", "equal", "quick"):
        assert expected in visible, f"the page does not show {expected!r}"


def test_comparisons_difference_approx_and_other_data():
    result = {"quick": False, "metrics": {"acc": 0.9711, "curve": [1.0, 2.0], "nested": {"W1": 2.5e-13}},
              "book": {"acc": 0.97, "curve": [1.0, 2.5], "nested": {"W1": 2.2e-13}, "only_book": 5},
              "book_ref": {"section": "DLFS1 §5.7.4", "approx": ["acc"]}}
    rows = {row["key"]: row for row in report.comparisons(result)}
    assert rows["acc"]["book"] == "≈ 0.97" and rows["acc"]["fnn"] == "0.9711"
    assert rows["acc"]["diff"].startswith("+0.0011") and "rel." in rows["acc"]["diff"]
    assert rows["curve"]["diff"] == "max |Δ| 0.5 (2.0e-01 rel.)"
    assert rows["nested.W1"]["book"] == "2.2e-13"
    assert rows["only_book"]["fnn"] == "—" and rows["only_book"]["diff"] == "—"
    quick = {**result, "quick": True, "book_ref": {**result["book_ref"], "quick_differs": True}}
    assert {row["diff"] for row in report.comparisons(quick)} == {"other data (quick)", "not measured in this mode"}
    assert report.difference([1, 2], [1, 2]) == "equal" and report.difference(3, [1, 2]).startswith("shapes")
    assert report.chapter("dlfs2_ch7_generate_text")[2] == "DLFS2 chapter 7: Generating text with RNNs"
    assert report.chapter("ch1_matplotlib")[:2] == ("DLFS1", 1)
    assert report.chapter("ml_linear_regression")[2].startswith("Machine-learning basics")
    assert report.seconds(0.0) == "< 0.001" and report.seconds(1.25) == "1.25"


def test_a_result_without_book_ref_is_placed_by_its_description():
    ref = report.cited("Batch norm on/off for 16 weight scales (DLFS1 §6.3.2, Fig. 6-19; Figures 6-20).")
    assert ref["section"] == "DLFS1 §6.3.2" and ref["figures"] == ["Fig. 6-19", "Fig. 6-20"]
    assert report.cited("DLFS2 §6.1–6.2 and DLFS2 §6.1")["section"] == "DLFS2 §6.1–6.2, DLFS2 §6.1"
    assert report.cited("Linear regression (ML basics)") is None
    result = {"experiment": "ch6_demo", "quick": True, "metrics": {"acc": 0.9}, "book": {}, "book_ref": None}
    row = report._summary_row(result, "A demo (DLFS1 §6.3.2, Fig. 6-19).")
    assert row["ref"] == "DLFS1 §6.3.2; Fig. 6-19" and "no number recorded" in row["numbers_html"]
    row = report._summary_row({**result, "experiment": "ml_demo"}, "A demo (ML basics).")
    assert row["ref"] == "—" and "not from the books" in row["numbers_html"]


def test_report_names_a_broken_result_and_refuses_an_empty_folder(tmp_path, capsys):
    results = tmp_path / "results"
    write_result(results / "ch5_demo", "ch5_demo", metrics={"test_acc": 0.97}, book={"test_acc": 0.97},
                 book_ref={"section": "DLFS1 §5.7.4", "figures": ["Fig. 5-1"]}, quick=False)
    (results / "ch6_broken").mkdir()
    (results / "ch6_broken" / "result.json").write_text('{"experiment": "ch6_broken", "metrics": {"x": NaN}}')
    out = tmp_path / "r.html"
    assert report.main(["--results", str(results), "--out", str(out)]) == 0
    assert "ch6_broken/result.json: not valid JSON" in capsys.readouterr().err
    page = Page(out.read_text(encoding="utf-8"))
    assert "not valid JSON" in " ".join(page.text) and images_resolve(page, results, out) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report.main(["--results", str(empty)]) == 2
    assert "no result.json under" in capsys.readouterr().err
    assert report.main(["--results", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(browser() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_page_renders_in_a_headless_browser(tmp_path):
    results = tmp_path / "results"
    write_result(results / "ch4_demo", "ch4_demo", metrics={"x": [6.0, 8.0]}, book={"x": [6.0, 8.0]},
                 book_ref={"section": "DLFS1 §4.4", "figures": ["Fig. 4-9"]}, figures=2)
    write_result(results / "dlfs2_ch6_demo", "dlfs2_ch6_demo", metrics={"ppl": 4.9}, book={"ppl": 136},
                 book_ref={"section": "DLFS2 §6.4", "approx": ["ppl"], "quick_differs": True})
    page = tmp_path / "report.html"
    assert report.main(["--results", str(results), "--out", str(page)]) == 0
    shot = tmp_path / "shot.png"
    run = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                          "--window-size=1280,2000", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = mimage.imread(shot)[..., :3]  # (2000, 1280, 3) floats in [0, 1]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"
    dark = np.mean(pixels.mean(axis=-1) < 0.5)
    assert 0.005 < dark < 0.5, f"{dark:.3f} of the screenshot is dark: no text, or a black page"


def test_the_readme_shows_how_to_make_the_page_and_links_its_screenshot():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "python -m fnn.report" in readme and "fnn report" in readme
    assert "](docs/report.png)" in readme
    shot = root / "docs" / "report.png"
    assert shot.read_bytes().startswith(PNG)
    height, width = mimage.imread(shot).shape[:2]
    assert width == 1280 and height > 1000, "docs/report.png is not a screenshot of the page"
