"""Figures of the training experiments (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deeprelax.optim import REGISTRY

COLORS = {name: info.color for name, info in REGISTRY.items()}
LABELS = {name: info.label for name, info in REGISTRY.items()}


def plot_runs(runs: Mapping[str, Sequence[dict[str, Any]]], path: str | Path, *, title: str) -> Path:
    """Two panels against effective epochs: test error (%) and training loss, one curve per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, hist in runs.items():
        if not hist:
            continue
        x = [r["effective_epochs"] for r in hist]
        style = dict(color=COLORS.get(name), label=LABELS.get(name, name), marker="o", ms=3, lw=1.5)
        ax1.plot(x, [r["test_error"] for r in hist], **style)
        ax2.plot(x, [r["train_loss"] for r in hist], **style)
    ax1.set_ylabel("validation error (%)")
    ax1.set_yscale("log")
    ax2.set_ylabel("training loss (minibatch, at the anchor)")
    ax2.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in (ax1, ax2):
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel("effective epochs (epochs × max(L, 1))")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax1.set_title("validation error")
    ax2.set_title("training loss")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
