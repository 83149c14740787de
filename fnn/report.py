"""``fnn report``: every experiment's ``result.json`` and figures in one static HTML page.

    fnn report [--results DIR] [--out FILE]

reads ``DIR/<experiment>/result.json`` (default ``results/``, where ``fnn run`` writes) and the PNG
figures and small text files beside it, and writes one self-contained page (default
``DIR/report.html``): the figures are embedded as ``data:`` URIs, so the page needs no network and
no other file. It has a table of contents, a summary table of the book's numbers against fnn's with
their difference, and one section per chapter of the books with, for each experiment, the book's
section and figures, fnn's figures, its numbers, quick or full mode, run time and versions.

The book's side comes from the ``book`` and ``book_ref`` fields that ``save_result`` (the
experiments' ``_common.py``) writes: numbers under the same key paths as ``metrics``, the section,
the figures, the keys the book gives only roughly, and whether ``--quick`` ran on other data.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fnn.files import write_atomic

# Chapter titles of the books, for the section headings.
CHAPTERS = {("DLFS1", 1): "Introduction to Python", ("DLFS1", 2): "Perceptrons",
            ("DLFS1", 3): "Neural networks", ("DLFS1", 4): "Neural network training",
            ("DLFS1", 5): "Backpropagation", ("DLFS1", 6): "Training techniques",
            ("DLFS1", 7): "Convolutional neural networks", ("DLFS1", 8): "Deep learning",
            ("DLFS2", 5): "Recurrent neural networks", ("DLFS2", 6): "Gated RNNs",
            ("DLFS2", 7): "Generating text with RNNs", ("DLFS2", 8): "Attention"}
TEXT_LIMIT = 20_000  # text files up to this size are shown on the page (e.g. generated text)


def chapter(name: str) -> tuple[str, int, str]:
    """``(book, number, heading)`` of an experiment from its name: ``ch5_x`` is DLFS1 chapter 5,
    ``dlfs2_ch7_x`` DLFS2 chapter 7; anything else goes under its name's first word."""
    m = re.match(r"(?:(dlfs2)_)?ch(\d+)_", name)
    if m:
        book, number = ("DLFS2" if m.group(1) else "DLFS1"), int(m.group(2))
        title = CHAPTERS.get((book, number))
        return book, number, f"{book} chapter {number}" + (f": {title}" if title else "")
    prefix = name.split("_")[0]
    return "~" + prefix, 0, {"ml": "Machine-learning basics (beyond the books)"}.get(prefix, prefix)


def leaves(tree, prefix: str = "") -> dict:
    """``{"a.b": value}`` for every value of a nested dict (the key paths of ``book`` and ``metrics``)."""
    if not isinstance(tree, dict):
        return {}
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fmt(value) -> str:
    """A number or list for a table cell: every digit of a float (the shortest repr that reads back
    the same, so 0.1999999999990898 is not shown as 0.2) up to 17 characters, else 10 significant
    digits; lists of more than 8 numbers shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value) if len(repr(value)) <= 18 else f"{value:.10g}"
    if isinstance(value, list):
        flat = np.asarray(value, dtype=object).ravel() if _numeric(value) else value
        if len(flat) > 8:
            return f"[{', '.join(fmt(v) for v in list(flat)[:6])}, … ({len(flat)} values)]"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def seconds(value) -> str:
    """A run time as result.json rounds it (to the millisecond): 0.0 is shown as "< 0.001"."""
    return "< 0.001" if value == 0 else fmt(value)


def _numeric(value) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def difference(fnn, book) -> str:
    """fnn − book for numbers (with the relative difference), the largest |difference| for arrays."""
    if fnn is None or not _numeric(fnn) or not _numeric(book):
        return "—"
    a, b = np.asarray(fnn, dtype=float), np.asarray(book, dtype=float)
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    if np.array_equal(a, b):
        return "equal"
    if a.ndim == 0:
        rel = f" ({(a - b) / abs(b):+.1e} rel.)" if b != 0 else ""
        return f"{a - b:+.3g}{rel}"
    scale = np.max(np.abs(b))
    rel = f" ({np.max(np.abs(a - b)) / scale:.1e} rel.)" if scale > 0 else ""
    return f"max |Δ| {np.max(np.abs(a - b)):.2g}{rel}"


def comparisons(result: dict) -> list[dict]:
    """One row per number the book states: key, book, fnn, difference (or why none)."""
    ref = result.get("book_ref") or {}
    metrics, rows = leaves(result.get("metrics")), []
    other_data = result.get("quick") and ref.get("quick_differs")
    for key, book in leaves(result.get("book")).items():
        fnn = metrics.get(key)
        if key not in metrics:
            diff = "not measured in this mode" if other_data else "—"
        elif other_data:
            diff = "other data (quick)"
        else:
            diff = difference(fnn, book)
        rows.append({"key": key, "book": ("≈ " if key in ref.get("approx", []) else "") + fmt(book),
                     "fnn": fmt(fnn) if key in metrics else "—", "diff": diff})
    return rows


def collect(results: Path) -> tuple[list[dict], list[str]]:
    """Every ``results/<name>/result.json`` read strictly, with its figures and text files; and the
    problems found (a file that is not valid JSON is reported, not fatal)."""
    runs, problems = [], []
    for path in sorted(results.glob("*/result.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)
        except (ValueError, OSError) as e:
            problems.append(f"{path}: not valid JSON ({e})")
            continue
        if not isinstance(result, dict) or "experiment" not in result:
            problems.append(f"{path}: not an experiment's result (no 'experiment' field)")
            continue
        folder = path.parent
        texts = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt"))
                 if p.stat().st_size <= TEXT_LIMIT}
        runs.append({"result": result, "folder": folder, "figures": sorted(folder.glob("*.png")),
                     "texts": texts})
    return runs, problems


def _refuse(constant):
    raise ValueError(f"{constant} is not JSON")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _table(rows: list[dict], columns: list[tuple[str, str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(title)}</th>" for _, title in columns)
    body = "".join("<tr>" + "".join(f"<td>{row[key] if key.endswith('_html') else _e(row[key])}</td>"
                                    for key, _ in columns) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def cited(description: str) -> dict | None:
    """The book's sections and figures an experiment's one-line description cites (book, section sign,
    section number; "Fig." and its number), as a ``book_ref`` for a result.json that records none;
    None when it cites none. Not a formula of the books: the index of sections must not list it."""
    sections = re.findall(r"DLFS[12] §\d+(?:\.\d+)*(?:[–-]\d+(?:\.\d+)*)?", description)
    if not sections:
        return None
    figures = re.findall(r"Fig(?:ures?|s?\.)\s*(\d+-\d+)", description)
    return {"section": ", ".join(dict.fromkeys(sections)), "figures": [f"Fig. {f}" for f in dict.fromkeys(figures)],
            "note": "the section as the experiment's description cites it (its result.json records none)"}


def _book_ref(ref: dict | None) -> str:
    if not ref:
        return "not from the books"
    parts = [str(ref.get("section", "?"))] + ([", ".join(map(str, ref["figures"]))] if ref.get("figures") else [])
    if ref.get("script"):
        parts.append(f"script {ref['script']}")
    return "; ".join(parts)


def _metrics_list(metrics: dict, shown: set) -> str:
    items = [(k, v) for k, v in leaves(metrics).items() if k not in shown and not isinstance(v, str)
             and (not isinstance(v, list) or len(np.ravel(np.asarray(v, dtype=object))) <= 8)]
    items += [(k, v) for k, v in leaves(metrics).items() if isinstance(v, str)]
    if not items:
        return ""
    cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(fmt(v))}</td></tr>" for k, v in items[:40])
    more = f"<p class='muted'>… and {len(items) - 40} more in result.json</p>" if len(items) > 40 else ""
    return (f"<details><summary>all of fnn's numbers ({len(items)})</summary>"
            f"<table class='kv'>{cells}</table>{more}</details>")


def _experiment(run: dict, descriptions: dict) -> str:
    r = run["result"]
    name = r["experiment"]
    ref = r.get("book_ref") or cited(descriptions.get(name, ""))
    mode = "quick" if r.get("quick") else "full"
    rows = comparisons(r)
    parts = [f'<section class="exp" id="{_anchor(name)}"><h3>{_e(name)}'
             f'<span class="badge {mode}">{mode}</span></h3>']
    if descriptions.get(name):
        parts.append(f"<p class='desc'>{_e(descriptions[name])}</p>")
    parts.append(f"<p class='meta'><b>Book:</b> {_e(_book_ref(ref))} · <b>run:</b> "
                 f"{_e(seconds(r.get('seconds')))} s, seed {_e(r.get('seed'))}, {_e(r.get('created', ''))}</p>")
    if ref and ref.get("note"):
        parts.append(f"<p class='note'>{_e(ref['note'])}</p>")
    if rows:
        parts.append(_table(rows, [("key", "quantity"), ("book", "book"), ("fnn", "fnn"),
                                   ("diff", "fnn − book")], "cmp"))
    for fig in run["figures"]:
        parts.append(f'<figure><img src="{_data_uri(fig)}" alt="{_e(name)}: {_e(fig.name)}" loading="lazy">'
                     f"<figcaption>{_e(fig.name)}</figcaption></figure>")
    for file, text in run["texts"].items():
        parts.append(f"<details><summary>{_e(file)}</summary><pre>{_e(text)}</pre></details>")
    parts.append(_metrics_list(r.get("metrics", {}), {row["key"] for row in rows}))
    versions = r.get("versions") or {}
    parts.append("<details><summary>config and versions</summary><pre>"
                 f"{_e(json.dumps({'config': r.get('config'), 'versions': versions}, indent=1))}</pre></details>")
    return "".join(parts) + "</section>"


def _summary_row(r: dict, description: str = "") -> dict:
    """One line of the summary table: the experiment, where in the book, and its comparisons in brief."""
    rows, ref = comparisons(r), r.get("book_ref") or cited(description) or {}
    if not rows:
        numbers = "<span class='muted'>" + ("not from the books" if not ref else "no number recorded"
                                            if not r.get("book_ref") else "no number in the book") + "</span>"
    elif all(row["diff"] == "equal" for row in rows) and len(rows) > 2:
        numbers = f"all {len(rows)} equal to the book's"
    else:
        other_data = r.get("quick") and ref.get("quick_differs")
        shown = [f"<code>{_e(row['key'])}</code>: book {_e(row['book'])}, fnn {_e(row['fnn'])}"
                 + ("" if other_data else f" <span class='diff'>({_e(row['diff'])})</span>") for row in rows[:3]]
        if len(rows) > 3:
            equal = sum(row["diff"] == "equal" for row in rows[3:])
            shown.append(f"… {len(rows) - 3} more" + (f", {equal} of them equal" if equal else ""))
        if other_data:
            shown.append("<span class='muted'>quick mode ran on other data than the book's: not compared</span>")
        numbers = "<br>".join(shown)
    return {"exp_html": f'<a href="#{_anchor(r["experiment"])}">{_e(r["experiment"])}</a>',
            "ref": _book_ref({**ref, "script": None}) if ref else "—", "mode": "quick" if r.get("quick") else "full",
            "seconds": seconds(r.get("seconds")), "numbers_html": numbers}


def render(runs: list[dict], problems: list[str], descriptions: dict | None = None) -> str:
    """The whole page as one HTML string."""
    descriptions = descriptions or {}
    groups: dict[tuple, list[dict]] = {}
    for run in sorted(runs, key=lambda r: (chapter(r["result"]["experiment"])[:2], r["result"]["experiment"])):
        groups.setdefault(chapter(run["result"]["experiment"]), []).append(run)
    summary = [_summary_row(run["result"], descriptions.get(run["result"]["experiment"], ""))
               for rs in groups.values() for run in rs]
    toc = "".join(f'<li><a href="#{_anchor(heading)}">{_e(heading)}</a> ({len(rs)})<ul>'
                  + "".join(f'<li><a href="#{_anchor(x["result"]["experiment"])}">{_e(x["result"]["experiment"])}'
                            f"</a></li>" for x in rs) + "</ul></li>" for (_, _, heading), rs in groups.items())
    quick = sum(bool(run["result"].get("quick")) for run in runs)
    versions = sorted({json.dumps({k: v for k, v in (run["result"].get("versions") or {}).items()
                                   if k in ("fnn", "python", "jax", "optax", "numpy", "device")}, sort_keys=True)
                       for run in runs})
    body = [f"<h1>fnn: the books' experiments</h1><p class='meta'>{len(runs)} experiments ({quick} in quick "
            f"mode, {len(runs) - quick} in full mode); page written "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p>",
            "<p>Quick mode runs in seconds on the embedded digits or a generated corpus; where that is not "
            "the book's data, its numbers are not compared with the book's. ≈ marks a number the book "
            "gives only roughly.</p>"]
    if problems:
        body.append("<div class='problems'><b>Not shown:</b><ul>" + "".join(f"<li>{_e(p)}</li>" for p in problems)
                    + "</ul></div>")
    body.append(f"<nav><h2>Contents</h2><ul><li><a href='#summary'>The book's numbers and fnn's</a></li>"
                f"{toc}<li><a href='#versions'>Versions</a></li></ul></nav>")
    body.append("<h2 id='summary'>The book's numbers and fnn's</h2>")
    body.append(_table(summary, [("exp_html", "experiment"), ("ref", "book section, figures"), ("mode", "mode"),
                                 ("seconds", "run time (s)"), ("numbers_html", "the book's numbers and fnn's")],
                       "summary"))
    for (_, _, heading), rs in groups.items():
        body.append(f"<h2 id='{_anchor(heading)}'>{_e(heading)}</h2>")
        body += [_experiment(run, descriptions) for run in rs]
    body.append("<h2 id='versions'>Versions</h2>" + "".join(f"<pre>{_e(v)}</pre>" for v in versions))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fnn report</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


CSS = """
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
background:#f6f6f4}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:28px;margin:8px 0}h2{font-size:22px;margin:36px 0 8px;padding-top:10px;border-top:2px solid #ddd}
h3{font-size:17px;margin:0 0 4px;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
nav ul{margin:4px 0;padding-left:20px}nav>ul>li{margin:4px 0}nav ul ul{columns:3;font-size:13px}
.meta,.muted{color:#666;font-size:13px;margin:2px 0}.desc{margin:2px 0 4px}
.note{margin:2px 0;font-size:13px;color:#5a4a00;background:#fff8d6;padding:2px 8px;border-radius:4px;
display:inline-block}
.exp{margin:18px 0;padding:14px 16px;border:1px solid #e3e3e3;border-radius:8px}
.badge{font:600 11px system-ui,sans-serif;margin-left:10px;padding:2px 7px;border-radius:9px;vertical-align:middle}
.badge.quick{background:#e8f1fb;color:#0b5cad}.badge.full{background:#e6f5e9;color:#1e7b34}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f2f2f2}td{font-variant-numeric:tabular-nums}
table.cmp td:first-child,code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
table.summary td:nth-child(2){max-width:220px}table.summary td:first-child{white-space:nowrap}
.diff{color:#555}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#777}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;
max-height:320px}details{margin:6px 0}summary{cursor:pointer;color:#444}
.problems{background:#fdecea;padding:6px 12px;border-radius:6px}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``fnn report [--results DIR] [--out FILE]``: write the page; 0 on success, 2 without results."""
    p = argparse.ArgumentParser(prog="fnn report", description="Every experiment's result.json and figures "
                                "in one self-contained HTML page.")
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="the folder of the experiments' outputs, one sub-folder each (default results)")
    p.add_argument("--out", type=Path, default=None, help="the page to write (default RESULTS/report.html)")
    args = p.parse_args(argv)
    if not args.results.is_dir():
        print(f"fnn report: --results {args.results} is not a folder (run experiments first: fnn run NAME)",
              file=sys.stderr)
        return 2
    runs, problems = collect(args.results)
    for problem in problems:
        print(f"fnn report: {problem}", file=sys.stderr)
    if not runs:
        print(f"fnn report: no result.json under {args.results}/*/ (run experiments first: fnn run NAME)",
              file=sys.stderr)
        return 2
    from fnn import cli  # the experiments' one-line descriptions; imported here, cli imports this module

    page = render(runs, problems, cli.experiments())
    out = args.out if args.out is not None else args.results / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page.encode("utf-8"))
    print(f"wrote {out} ({len(runs)} experiments, {sum(len(r['figures']) for r in runs)} figures, "
          f"{len(page) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
