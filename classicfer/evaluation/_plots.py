"""Figures of a run: confusion matrix and a gallery of confident mistakes."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion, labels, path, *, title: str = "") -> None:
    """Row-normalised confusion matrix, each cell showing its count and row percentage."""
    plt = _plt()
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    cmn = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(labels)
    side = max(4.5, 0.95 * n + 2.2)
    fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=110)
    im = ax.imshow(cmn, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j] == 0:
                ax.text(j, i, "0", ha="center", va="center", fontsize=8, color="#aaaaaa")
                continue
            color = "white" if cmn[i, j] > 0.55 else "black"
            pct = "<1%" if cmn[i, j] < 0.005 else f"{100 * cmn[i, j]:.0f}%"
            ax.text(j, i, f"{int(cm[i, j])}\n{pct}", ha="center",
                    va="center", fontsize=9 if n <= 8 else 7, color=color)
    ticks = [f"{c}\n(n={int(rows[i, 0])})" for i, c in enumerate(labels)]
    ax.set_xticks(range(n), labels=labels, rotation=35, ha="right", fontsize=10)
    ax.set_yticks(range(n), labels=ticks, fontsize=9)
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    if title:
        ax.set_title(title, fontsize=11)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("share of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_misclassified(images, true, pred, confidence, path, *, n: int = 24,
                       cols: int = 6, title: str = "") -> int:
    """A gallery of the most confident mistakes; returns how many are shown.

    ``images`` are the crops of the mistakes, already sorted by the caller
    (most confident first); each tile is captioned with the true and predicted
    label and the model's confidence.
    """
    plt = _plt()
    k = min(n, len(true))
    if k == 0:
        fig, ax = plt.subplots(figsize=(4, 2), dpi=110)
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=12)
        fig.savefig(path)
        plt.close(fig)
        return 0
    cols = min(cols, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(1.9 * cols, 6.0), 2.25 * rows + 0.7),
                             dpi=110, squeeze=False)
    for a in axes.ravel():
        a.axis("off")
    for i in range(k):
        a = axes.ravel()[i]
        img = np.asarray(images[i])
        a.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                 interpolation="nearest")
        conf = confidence[i]
        c = "" if conf is None or not np.isfinite(conf) else f" {100 * conf:.0f}%"
        a.set_title(f"true: {true[i]}\npred: {pred[i]}{c}", fontsize=9, color="darkred")
    if title:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return k
