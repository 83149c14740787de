"""Apple/orange graphs with Mul and Add layers (DLFS1 §5.4, Fig. 5-16/5-17; book: 715, dTax 650).
Book: price 220, dApple 2.2, dApple_num 110, dTax 200; with oranges price 715, dOrange 3.3000000000000003,
dOrange_num 165, dTax 650.

Two apples at 100 yen and 10% tax (buy_apple.py), then two apples and three oranges at 150 yen
(buy_apple_orange.py), as computational graphs of `fnn.layers.mul` and `fnn.layers.add`: forward
passes keep their caches, backward passes run in reverse from dprice = 1 (§5.4.1–5.4.2). Each
backward value is d price / d input: one more yen per apple costs 2.2 yen, a higher tax rate costs
650 yen per unit. Float64 Python-scalar arithmetic, as the book's prints show (its
3.3000000000000003 included); the book prints the prices and counts through ``int()``.

Writes ``buy_apple.png`` (both graphs, forward values above the edges, backward below in red) and
``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from fnn.layers import add, mul
from fnn_experiments import _common as ex

NAME = "ch5_buy_apple"
NO = {}
BOOK = {"apple": {"price": 220, "dapple": 2.2, "dapple_num": 110, "dtax": 200},
        "apple_orange": {"price": 715, "dapple": 2.2, "dapple_num": 110, "dorange": 3.3000000000000003,
                         "dorange_num": 165, "dtax": 650}}


def buy_apple(apple=100.0, apple_num=2.0, tax=1.1) -> dict:
    """Forward and backward through Mul(apple, apple_num) -> Mul(., tax) (DLFS1 §5.4.1)."""
    apple_price, c_apple = mul.forward(NO, (apple, apple_num))
    price, c_tax = mul.forward(NO, (apple_price, tax))
    dprice = 1.0
    _, (dapple_price, dtax) = mul.backward(NO, c_tax, dprice)
    _, (dapple, dapple_num) = mul.backward(NO, c_apple, dapple_price)
    return {"apple_price": apple_price, "price": price, "dapple_price": dapple_price,
            "dapple": dapple, "dapple_num": dapple_num, "dtax": dtax}


def buy_apple_orange(apple=100.0, apple_num=2.0, orange=150.0, orange_num=3.0, tax=1.1) -> dict:
    """Forward and backward through two Mul, an Add and the tax Mul (DLFS1 §5.4.2, Fig. 5-17)."""
    apple_price, c_apple = mul.forward(NO, (apple, apple_num))          # (1)
    orange_price, c_orange = mul.forward(NO, (orange, orange_num))      # (2)
    all_price, c_add = add.forward(NO, (apple_price, orange_price))     # (3)
    price, c_tax = mul.forward(NO, (all_price, tax))                    # (4)
    dprice = 1.0
    _, (dall_price, dtax) = mul.backward(NO, c_tax, dprice)             # (4)
    _, (dapple_price, dorange_price) = add.backward(NO, c_add, dall_price)  # (3)
    _, (dorange, dorange_num) = mul.backward(NO, c_orange, dorange_price)   # (2)
    _, (dapple, dapple_num) = mul.backward(NO, c_apple, dapple_price)       # (1)
    return {"apple_price": apple_price, "orange_price": orange_price, "all_price": all_price,
            "price": price, "dall_price": dall_price, "dapple_price": dapple_price,
            "dorange_price": dorange_price, "dapple": dapple, "dapple_num": dapple_num,
            "dorange": dorange, "dorange_num": dorange_num, "dtax": dtax}


def _edge(ax, a, b, fwd, bwd, name=""):
    """An arrow a -> b with the forward value on its upper side and the backward value (red) below."""
    ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "lw": 1.2, "color": "k",
                                                  "shrinkA": 14, "shrinkB": 14})
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / np.linalg.norm(b - a)
    n = np.array([-d[1], d[0]]) if d[0] > 0 else np.array([d[1], -d[0]])  # the normal pointing up
    mid = (a + b) / 2
    angle = np.degrees(np.arctan2(d[1], d[0]))
    angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
    ax.text(*(mid + 0.17 * n), f"{name} {fwd:g}".strip(), ha="center", va="center", fontsize=9,
            rotation=angle, rotation_mode="anchor")
    ax.text(*(mid - 0.17 * n), f"{bwd:.10g}", ha="center", va="center", fontsize=9, color="tab:red",
            rotation=angle, rotation_mode="anchor")


def _node(ax, xy, op):
    ax.add_patch(plt.Circle(xy, 0.22, fill=False, lw=1.5))
    ax.text(*xy, op, ha="center", va="center", fontsize=14)


def draw_apple(ax, v, inputs) -> None:
    _node(ax, (2, 1), "×")
    _node(ax, (4, 1), "×")
    _edge(ax, (0, 1.6), (2, 1), inputs["apple"], v["dapple"], "apple")
    _edge(ax, (0, 0.2), (2, 1), inputs["apple_num"], v["dapple_num"], "apple_num")
    _edge(ax, (2, 1), (4, 1), v["apple_price"], v["dapple_price"])
    _edge(ax, (3, -0.2), (4, 1), inputs["tax"], v["dtax"], "tax")
    _edge(ax, (4, 1), (5.6, 1), v["price"], 1.0, "price")
    ax.set_aspect("equal")
    ax.set(xlim=(-0.3, 6), ylim=(-1.0, 3.1), title="buy_apple (Fig. 5-16)")
    ax.axis("off")


def draw_apple_orange(ax, v, inputs) -> None:
    for xy, op in (((2, 2), "×"), ((2, 0), "×"), ((3.6, 1), "+"), ((5, 1), "×")):
        _node(ax, xy, op)
    _edge(ax, (0, 2.6), (2, 2), inputs["apple"], v["dapple"], "apple")
    _edge(ax, (0, 1.5), (2, 2), inputs["apple_num"], v["dapple_num"], "apple_num")
    _edge(ax, (0, 0.5), (2, 0), inputs["orange"], v["dorange"], "orange")
    _edge(ax, (0, -0.6), (2, 0), inputs["orange_num"], v["dorange_num"], "orange_num")
    _edge(ax, (2, 2), (3.6, 1), v["apple_price"], v["dapple_price"])
    _edge(ax, (2, 0), (3.6, 1), v["orange_price"], v["dorange_price"])
    _edge(ax, (3.6, 1), (5, 1), v["all_price"], v["dall_price"])
    _edge(ax, (4.2, -0.4), (5, 1), inputs["tax"], v["dtax"], "tax")
    _edge(ax, (5, 1), (6.6, 1), v["price"], 1.0, "price")
    ax.set_aspect("equal")
    ax.set(xlim=(-0.3, 7), ylim=(-1.0, 3.1), title="buy_apple_orange (Fig. 5-17)")
    ax.axis("off")


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, jax.enable_x64(True):
        apple = {k: float(v) for k, v in buy_apple().items()}
        apple_orange = {k: float(v) for k, v in buy_apple_orange().items()}
    inputs = {"apple": 100, "apple_num": 2, "orange": 150, "orange_num": 3, "tax": 1.1}

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 4.6), layout="constrained",
                                   gridspec_kw={"width_ratios": [1, 1.2]})
    draw_apple(ax1, apple, inputs)
    draw_apple_orange(ax2, apple_orange, inputs)
    fig.suptitle("Backpropagation through the shopping graphs with Mul and Add layers (DLFS1 §5.4): "
                 "forward values above the arrows, backward (d price / d value) below in red")
    ex.save_figure(fig, out / "buy_apple.png")

    book_view = {"apple": {"price": int(apple["price"]), "dapple": apple["dapple"],
                           "dapple_num": int(apple["dapple_num"]), "dtax": apple["dtax"]},
                 "apple_orange": {"price": int(apple_orange["price"]), "dapple": apple_orange["dapple"],
                                  "dapple_num": int(apple_orange["dapple_num"]),
                                  "dorange": apple_orange["dorange"],
                                  "dorange_num": int(apple_orange["dorange_num"]),
                                  "dtax": apple_orange["dtax"]}}
    metrics = {"apple": apple, "apple_orange": apple_orange, "as_the_book_prints": book_view,
               "matches_book": book_view == BOOK}
    path = ex.save_result(out, NAME, args, config=inputs, metrics=metrics, seconds=timer.seconds,
                          book={"as_the_book_prints": BOOK},
                          book_ref={"section": "DLFS1 §5.4", "figures": ["Fig. 5-16", "Fig. 5-17"],
                                    "script": "ch05/buy_apple.py, buy_apple_orange.py"})
    lines = [f"buy_apple:        {', '.join(f'{k} {v!r}' for k, v in book_view['apple'].items())}",
             f"buy_apple_orange: {', '.join(f'{k} {v!r}' for k, v in book_view['apple_orange'].items())}",
             f"matches the book's printed values: {metrics['matches_book']}",
             f"wrote {out / 'buy_apple.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()
