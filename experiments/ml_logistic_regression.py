"""Logistic regression, sigmoid + cross-entropy, lr decay (ML basics; reference: scikit-learn).

Data: two Gaussian clouds in 2-D, 200 points each (seeded), labels 0/1. Model
p = sigmoid(x · w + b) (DLFS1 §3.2.4), loss the binary cross-entropy
-1/N sum [t log p + (1 - t) log(1 - p)] (`fnn.functions.binary_cross_entropy_with_logits`, the
stable form of `binary_cross_entropy`), trained by mini-batch SGD (batch 16, 600 steps, one
`lax.scan`) three ways: a small constant learning rate 0.05 (slow), a large constant 2.0 (fast but
its loss keeps jittering at the mini-batch noise floor), and 2.0 with exponential decay to 0.02
(``optax.exponential_decay``: fast first, then it settles). The reference is the unregularised
optimum from scikit-learn (C = 1e6).

Writes ``logistic_regression.png`` (decision boundary, loss per step for the three schedules, the
schedules) and ``result.json``; ``--quick`` is the same run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.linear_model import LogisticRegression

from fnn import functions as F
from fnn_experiments import _common as ex

NAME = "ml_logistic_regression"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--steps": {"type": "count", "default": 600, "help": "SGD steps (default 600)"},
}


def logits(params, x):
    """z = x · w + b; x (N, 2) -> (N,). p = sigmoid(z)."""
    return x @ params["w"] + params["b"]


def loss(params, x, t):
    """Binary cross-entropy of p = sigmoid(x · w + b) and t, from the logits (stable)."""
    return F.binary_cross_entropy_with_logits(logits(params, x), t)


def train(x, t, schedule, key, *, steps: int, batch_size: int):
    """Mini-batch SGD with the learning-rate `schedule`; returns params and the full-data loss per step."""
    opt = optax.sgd(schedule)
    params = {"w": jnp.zeros(2, x.dtype), "b": jnp.zeros((), x.dtype)}

    def step(carry, k):
        params, opt_state = carry
        idx = jax.random.choice(k, x.shape[0], (batch_size,), replace=False)
        grads = jax.grad(loss)(params, x[idx], t[idx])
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), loss(params, x, t)

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), jax.random.split(key, steps))
    return params, losses


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    kd, kt = jax.random.split(jax.random.key(args.seed))
    k0, k1 = jax.random.split(kd)
    steps, batch = args.steps, 16
    schedules = {"constant 0.05": 0.05, "constant 2.0": 2.0,
                 "2.0, exponential decay to 0.02": optax.exponential_decay(2.0, steps, 0.01)}
    with ex.Timer() as timer:
        x = jnp.concatenate([jax.random.normal(k0, (200, 2)) * 0.9 + jnp.array([[-1.0, -0.5]]),
                             jax.random.normal(k1, (200, 2)) * 0.9 + jnp.array([[1.0, 0.8]])])
        t = jnp.concatenate([jnp.zeros(200), jnp.ones(200)])
        runs = {name: train(x, t, s, kt, steps=steps, batch_size=batch) for name, s in schedules.items()}
        runs = jax.device_get(runs)
        ref = LogisticRegression(C=1e6, tol=1e-10, max_iter=10000).fit(np.asarray(x), np.asarray(t))
        ref_params = {"w": jnp.asarray(ref.coef_[0], jnp.float32), "b": jnp.asarray(ref.intercept_[0],
                                                                                   jnp.float32)}
        ref_loss = float(loss(ref_params, x, t))
    x_np, t_np = np.asarray(x), np.asarray(t)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), layout="constrained")
    best = runs["2.0, exponential decay to 0.02"][0]
    g = np.linspace(-4, 4, 200)
    G1, G2 = np.meshgrid(g, g)
    prob = np.asarray(F.sigmoid(logits(best, jnp.asarray(np.stack([G1.ravel(), G2.ravel()], 1),
                                                           jnp.float32)))).reshape(G1.shape)
    cf = axes[0].contourf(G1, G2, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    fig.colorbar(cf, ax=axes[0], label="p = sigmoid(x·w + b)")
    axes[0].scatter(x_np[t_np == 0, 0], x_np[t_np == 0, 1], s=10, c="tab:blue", label="t = 0")
    axes[0].scatter(x_np[t_np == 1, 0], x_np[t_np == 1, 1], s=10, c="tab:red", label="t = 1")
    w, b = np.asarray(best["w"]), float(best["b"])
    axes[0].plot(g, -(w[0] * g + b) / w[1], "k", label="p = 0.5 (decayed lr)")
    axes[0].plot(g, -(ref.coef_[0][0] * g + ref.intercept_[0]) / ref.coef_[0][1], "k:",
                 label="scikit-learn")
    axes[0].set(xlim=(-4, 4), ylim=(-4, 4), xlabel="x1", ylabel="x2", title="decision boundary")
    axes[0].legend(fontsize=8, loc="lower right")
    colors = dict(zip(schedules, ("tab:orange", "tab:green", "tab:blue"), strict=True))
    for name in schedules:  # device_get sorted the dict's keys: plot in the schedules' order
        axes[1].plot(np.asarray(runs[name][1]) - ref_loss, lw=1, label=name, color=colors[name])
    axes[1].set(yscale="log", xlabel="SGD step (batch 16)", ylabel="loss - optimal loss",
                title="full-data loss above the optimum")
    s = np.arange(steps)
    for name, sched in schedules.items():
        lr = np.asarray(sched(jnp.asarray(s))) if callable(sched) else np.full(steps, sched)
        axes[2].plot(s, lr, label=name, color=colors[name])
    axes[2].set(yscale="log", xlabel="step", ylabel="learning rate", title="learning-rate schedules")
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle("Logistic regression by mini-batch SGD: learning-rate decay")
    ex.save_figure(fig, out / "logistic_regression.png")

    def acc(params):
        return float(np.mean((np.asarray(logits(params, x)) > 0) == (t_np == 1)))

    metrics = {name: {"w": np.asarray(prm["w"]).tolist(), "b": float(prm["b"]),
                      "final_loss": float(losses[-1]),
                      "mean_loss_last_100": float(np.mean(losses[-100:])),
                      "loss_std_last_100": float(np.std(losses[-100:])), "accuracy": acc(prm)}
               for name in schedules for prm, losses in [runs[name]]}
    metrics["sklearn"] = {"w": ref.coef_[0].tolist(), "b": float(ref.intercept_[0]),
                          "loss": ref_loss, "accuracy": float(ref.score(x_np, t_np))}
    config = {"n": 400, "batch_size": batch, "steps": steps, "optimizer": "SGD",
              "schedules": {"constant 0.05": 0.05, "constant 2.0": 2.0,
                            "2.0, exponential decay to 0.02": "2.0 * 0.01 ** (step / steps)"}}
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds)
    lines = [f"{name:>32}: last-100-step loss {m['mean_loss_last_100']:.5f} +- {m['loss_std_last_100']:.5f}, "
             f"accuracy {m['accuracy']:.4f}" for name, m in metrics.items() if name != "sklearn"]
    lines += [f"{'scikit-learn optimum':>32}: loss {ref_loss:.5f}, accuracy "
              f"{metrics['sklearn']['accuracy']:.4f}",
              f"wrote {out / 'logistic_regression.png'} and {path}"]
    ex.report(lines)
    return {"metrics": metrics}


if __name__ == "__main__":
    main()
