"""Per-group evaluation: accuracy and macro-F1 per group, with bootstrap intervals.

Groups come from a CSV the user supplies (``--groups groups.csv``): one key
column (image path, file name or id) and one or more attribute columns (e.g.
``gender``, ``age_band``, ``skin_tone``). Neither FER-2013 nor CK+ ships any
demographic label, so classicfer never guesses one: per-group figures exist only
where someone has annotated the images.

For each attribute the report gives every group's size, accuracy and macro-F1
with 95 % percentile-bootstrap intervals (resampling images within the group),
per-class true-positive rates (recall), the worst group, the largest gap between
groups, and per-class TPR gaps (the *equal opportunity* difference of Hardt et
al., 2016). Groups smaller than ``min_size`` are flagged: their intervals are
wide and their point estimates should not be read alone.

References
----------
.. [1] Hardt, M., Price, E., Srebro, N. (2016). Equality of opportunity in
       supervised learning. NeurIPS. arXiv:1610.02413
.. [2] Efron, B., Tibshirani, R. (1993). An Introduction to the Bootstrap.
       Chapman & Hall. :DOI:`10.1201/9780429246593`
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..exceptions import DataError

#: Accepted names of the key column (case-insensitive); else the first column is the key.
KEY_COLUMNS = ("path", "image", "file", "filename", "id", "image_id", "name")


def _norm(p: str) -> str:
    return os.path.normcase(os.path.normpath(str(p).strip()))


def load_groups_csv(path, dataset, *, allow_missing=False) -> dict:
    """Read a groups CSV and align its attributes with the dataset's rows.

    Parameters
    ----------
    path : str or Path
        CSV with a header. The key column is the first one named ``path``,
        ``image``, ``file``, ``filename``, ``id``, ``image_id`` or ``name``
        (else the first column); every other column is an attribute.
    dataset : Dataset
        Rows are matched to CSV keys by full path, path relative to the dataset
        root, file name, or file name without extension (the id), in that order.
    allow_missing : bool
        When False (default) a dataset row with no CSV entry is an error. When
        True such rows get the group ``""``, which :func:`group_metrics` skips.

    Returns
    -------
    dict[str, (N,) ndarray of str]
        One array per attribute, aligned with ``dataset`` rows.

    Raises
    ------
    DataError
        Missing/empty file, no attribute column, duplicate or ambiguous keys,
        conflicting values, or (unless ``allow_missing``) unmatched dataset rows.
    """
    p = Path(path)
    header, rows, key_col = _read_groups_csv(p)
    attrs = [h for i, h in enumerate(header) if i != key_col]
    paths = [str(x) for x in dataset.paths]
    root = str(getattr(dataset, "root", "") or "")
    index = _PathIndex(paths, root)
    values = {a: np.full(len(paths), "", dtype=object) for a in attrs}
    seen_keys = set()
    for line_no, r in enumerate(rows, start=2):
        key = _row_key(r, header, key_col, seen_keys, where=f"{p}:{line_no}")
        i = index.find(key, where=f"{p}:{line_no}")
        if i is None:
            continue
        for a in attrs:
            v = r[header.index(a)].strip()
            if values[a][i] and values[a][i] != v:
                raise DataError(f"{p}:{line_no}: {paths[i]} gets {a}={v!r} but an earlier row "
                                f"gave {values[a][i]!r}")
            values[a][i] = v
    matched = np.zeros(len(paths), dtype=bool)
    for a in attrs:
        matched |= values[a] != ""
    _check_coverage(p, matched, rows[0][key_col], len(rows), dataset, paths, root,
                    allow_missing)
    return {a: values[a].astype(str) for a in attrs}


def _read_groups_csv(p: Path):
    """``(header, rows, key column index)`` of a groups CSV, blank rows dropped."""
    if not p.is_file():
        raise DataError(f"{p}: groups CSV not found; expected a CSV with a path/id column and "
                        f"attribute columns such as gender,age_band")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{p}: empty groups CSV; expected a header like "
                            f"'path,gender,age_band'") from None
        rows = [r for r in reader if any(c.strip() for c in r)]
    if len(header) < 2:
        raise DataError(f"{p}: groups CSV needs a key column and at least one attribute "
                        f"column; header is {','.join(header)!r}")
    if len(set(header)) != len(header):
        raise DataError(f"{p}: duplicate column names in header {','.join(header)!r}")
    lower = [h.lower() for h in header]
    key_col = next((lower.index(k) for k in KEY_COLUMNS if k in lower), 0)
    if not rows:
        raise DataError(f"{p}: groups CSV has a header but no rows")
    return header, rows, key_col


def _row_key(r, header, key_col, seen_keys, *, where) -> str:
    """The key of CSV row ``r``, refusing a wrong field count, an empty or repeated key."""
    if len(r) != len(header):
        raise DataError(f"{where}: {len(r)} fields, header has {len(header)}")
    key = r[key_col].strip()
    if not key:
        raise DataError(f"{where}: empty {header[key_col]!r}")
    if key in seen_keys:
        raise DataError(f"{where}: key {key!r} appears twice")
    seen_keys.add(key)
    return key


class _PathIndex:
    """Dataset rows by full path, path relative to ``root``, file name and file stem."""

    def __init__(self, paths, root):
        self.paths = paths
        self.by_full, self.by_rel, self.by_base, self.by_stem = {}, {}, {}, {}
        for i, dp in enumerate(paths):
            self.by_full[_norm(dp)] = i
            self.by_full[_norm(os.path.abspath(dp))] = i
            if root:
                try:
                    self.by_rel[_norm(os.path.relpath(dp, root))] = i
                except ValueError:  # different drives on Windows
                    pass
            base = os.path.basename(dp)
            self.by_base.setdefault(base, []).append(i)
            self.by_stem.setdefault(os.path.splitext(base)[0], []).append(i)

    def find(self, key, *, where):
        """The row ``key`` names, or None; a bare name shared by several rows is an error."""
        k = _norm(key)
        for table in (self.by_full, self.by_rel):
            if k in table:
                return table[k]
        for table, name in ((self.by_base, os.path.basename(key)),
                            (self.by_stem, os.path.splitext(os.path.basename(key))[0])):
            if name in table:
                idx = table[name]
                if len(idx) > 1:
                    raise DataError(
                        f"{where}: key {key!r} matches {len(idx)} dataset images "
                        f"(e.g. {self.paths[idx[0]]}, {self.paths[idx[1]]}); use paths relative "
                        f"to the dataset root instead of bare file names")
                return idx[0]
        return None


def _check_coverage(p, matched, first_key, n_rows, dataset, paths, root, allow_missing):
    """Refuse a CSV that matches no image, or (unless ``allow_missing``) misses some."""
    if matched.sum() == 0:
        raise DataError(f"{p}: none of its {n_rows} keys matches an image of dataset "
                        f"{getattr(dataset, 'name', '')!r} (e.g. key {first_key!r} vs "
                        f"image {paths[0] if paths else '-'}); keys must be full paths, paths "
                        f"relative to {root or 'the dataset root'}, file names or ids")
    missing = np.flatnonzero(~matched)
    if len(missing) and not allow_missing:
        ex = ", ".join(os.path.basename(paths[i]) for i in missing[:3])
        raise DataError(f"{p}: {len(missing)} of {len(paths)} dataset images have no row "
                        f"(e.g. {ex}); add them to the CSV or evaluate only annotated images")


# --------------------------------------------------------------------------- metrics


def _to_index(y, labels, *, outside_ok=False):
    """Names or indices -> indices.

    With ``outside_ok`` (predictions), names not in ``labels`` map to ``len(labels)``:
    an extra column that only ever counts as an error.
    """
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        if len(y) and (y.min() < 0 or y.max() >= len(labels)):
            raise DataError(f"class indices must lie in [0, {len(labels) - 1}]")
        return y.astype(int)
    lut = {lab: i for i, lab in enumerate(labels)}
    if outside_ok:
        return np.array([lut.get(str(v), len(labels)) for v in y], dtype=int)
    bad = sorted({str(v) for v in y if str(v) not in lut})
    if bad:
        raise DataError(f"labels {', '.join(bad[:5])} are not in {', '.join(labels)}")
    return np.array([lut[str(v)] for v in y], dtype=int)


def _confusions(t, p, k, boot_idx=None):
    """Confusion counts: (K, K), or (B, K, K) over bootstrap index rows."""
    if boot_idx is None:
        return np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    b = boot_idx.shape[0]
    codes = (np.arange(b)[:, None] * (k * k) + t[boot_idx] * k + p[boot_idx]).ravel()
    return np.bincount(codes, minlength=b * k * k).reshape(b, k, k)


def _macro_f1(cm, k=None):
    """Macro-F1 from (..., K, K) confusion counts.

    The mean runs over the first ``k`` classes that are present in truth or prediction
    (what sklearn's ``f1_score(average="macro")`` does without ``labels``); a trailing
    "outside the labels" column only adds errors.
    """
    k = cm.shape[-1] if k is None else k
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    fp = (cm.sum(axis=-2) - tp)[..., :k]
    fn = (cm.sum(axis=-1) - tp)[..., :k]
    tp = tp[..., :k]
    denom = 2 * tp + fp + fn
    present = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _ci(samples, alpha=0.05):
    lo, hi = np.percentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def group_metrics(y_true, y_pred, groups, labels, *, min_size=30, n_boot=1000, seed=0) -> dict:
    """Per-group accuracy, macro-F1 and per-class TPR, with gaps between groups.

    Parameters
    ----------
    y_true, y_pred : (N,) array of str or int
        True and predicted labels (names from ``labels`` or indices into it). A
        predicted name outside ``labels`` counts as an error.
    groups : dict[str, (N,) array] or (N,) array
        Attribute name -> group of each sample (e.g. from
        :func:`load_groups_csv`). A bare array is the attribute ``"group"``.
        Samples whose group is ``""`` are left out of that attribute.
    labels : sequence of str
        Class names, in index order.
    min_size : int
        Groups with fewer samples are listed in ``warnings`` and excluded from
        the worst group and the gaps (unless every group is that small).
    n_boot : int
        Bootstrap resamples per group (0 disables the intervals).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``{"labels", "n_samples", "min_size", "n_boot", "seed", "overall":
        {...}, "attributes": {attr: {"groups": {g: {"n", "accuracy",
        "accuracy_ci", "macro_f1", "macro_f1_ci", "tpr": {class: float|None},
        "support": {class: int}, "small"}}, "worst_group", "accuracy_gap",
        "macro_f1_gap", "tpr_gap": {class: float|None}, "max_tpr_gap",
        "warnings": [str]}}}``. Gaps are max - min over the compared groups.
    """
    labels = [str(x) for x in labels]
    k = len(labels)
    t = _to_index(y_true, labels)
    p = _to_index(y_pred, labels, outside_ok=True)
    kk = k + 1  # confusion width: the labels plus "predicted outside the labels"
    if len(t) != len(p):
        raise DataError(f"y_true has {len(t)} samples, y_pred {len(p)}")
    if not isinstance(groups, dict):
        groups = {"group": groups}
    for a, g in groups.items():
        if len(g) != len(t):
            raise DataError(f"attribute {a!r} has {len(g)} values for {len(t)} samples")
    rng = np.random.default_rng(seed)

    def summarise(mask):
        ti, pi = t[mask], p[mask]
        n = len(ti)
        cm = _confusions(ti, pi, kk)
        support = cm.sum(axis=1)
        rec = {
            "n": n,
            "accuracy": float(np.mean(ti == pi)) if n else None,
            "macro_f1": float(_macro_f1(cm, k)) if n else None,
            "tpr": {lab: (float(cm[j, j] / support[j]) if support[j] else None)
                    for j, lab in enumerate(labels)},
            "support": {lab: int(support[j]) for j, lab in enumerate(labels)},
            "small": n < min_size,
        }
        if n_boot and n:
            idx = rng.integers(0, n, size=(int(n_boot), n))
            acc_b = (ti[idx] == pi[idx]).mean(axis=1)
            f1_b = _macro_f1(_confusions(ti, pi, kk, idx), k)
            rec["accuracy_ci"] = _ci(acc_b)
            rec["macro_f1_ci"] = _ci(f1_b)
        else:
            rec["accuracy_ci"] = rec["macro_f1_ci"] = None
        return rec

    out = {
        "labels": labels,
        "n_samples": len(t),
        "min_size": int(min_size),
        "n_boot": int(n_boot),
        "seed": int(seed),
        "ci": "95 % percentile bootstrap over images within each group",
        "overall": summarise(np.ones(len(t), dtype=bool)),
        "attributes": {},
    }
    for attr, g in groups.items():
        g = np.asarray(g).astype(str)
        names = sorted(set(g) - {""})
        if not names:
            raise DataError(f"attribute {attr!r} has no non-empty group")
        recs = {name: summarise(g == name) for name in names}
        warnings = [f"{attr}={name}: only {r['n']} images (< {min_size}); its figures are "
                    f"unreliable" for name, r in recs.items() if r["small"]]
        big = [name for name in names if not recs[name]["small"]]
        compared = big if len(big) >= 2 else names
        if len(big) < 2 and len(names) >= 2:
            warnings.append(f"{attr}: fewer than two groups with >= {min_size} images; gaps "
                            f"compare small groups and are unreliable")
        if len(names) < 2:
            warnings.append(f"{attr}: a single group ({names[0]}); no gap can be computed")
        accs = {n_: recs[n_]["accuracy"] for n_ in compared}
        f1s = {n_: recs[n_]["macro_f1"] for n_ in compared}
        worst = min(accs, key=accs.get)
        tpr_gap = {}
        for lab in labels:
            vals = [recs[n_]["tpr"][lab] for n_ in compared if recs[n_]["tpr"][lab] is not None]
            tpr_gap[lab] = float(max(vals) - min(vals)) if len(vals) >= 2 else None
        defined = {lab: v for lab, v in tpr_gap.items() if v is not None}
        max_lab = max(defined, key=defined.get) if defined else None
        out["attributes"][attr] = {
            "groups": recs,
            "compared": compared,
            "worst_group": worst,
            "worst_accuracy": accs[worst],
            "best_group": max(accs, key=accs.get),
            "accuracy_gap": float(max(accs.values()) - min(accs.values())),
            "macro_f1_gap": float(max(f1s.values()) - min(f1s.values())),
            "tpr_gap": tpr_gap,
            "max_tpr_gap": None if max_lab is None else {"class": max_lab,
                                                         "gap": defined[max_lab]},
            "warnings": warnings,
        }
    return out


def group_metrics_markdown(result) -> str:
    """A Markdown rendering of :func:`group_metrics` output (for reports and cards)."""
    lines = []

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    def ci(c):
        return "" if not c else f" [{100 * c[0]:.1f}, {100 * c[1]:.1f}]"

    for attr, a in result["attributes"].items():
        lines.append(f"**{attr}** (worst group: {a['worst_group']}; accuracy gap "
                     f"{pct(a['accuracy_gap'])} points; macro-F1 gap {pct(a['macro_f1_gap'])} "
                     f"points)")
        lines.append("")
        lines.append("| group | images | accuracy % [95 % CI] | macro-F1 % [95 % CI] |")
        lines.append("|---|---:|---|---|")
        for g, r in a["groups"].items():
            flag = " (small)" if r["small"] else ""
            lines.append(f"| {g}{flag} | {r['n']} | {pct(r['accuracy'])}{ci(r['accuracy_ci'])} "
                         f"| {pct(r['macro_f1'])}{ci(r['macro_f1_ci'])} |")
        lines.append("")
        gaps = [(lab, v) for lab, v in a["tpr_gap"].items() if v is not None]
        if gaps:
            lines.append("True-positive-rate gap per class (equal opportunity, max - min "
                         "over groups, points): " + ", ".join(f"{lab} {100 * v:.1f}"
                                                              for lab, v in gaps))
            lines.append("")
        for w in a["warnings"]:
            lines.append(f"- Warning: {w}")
        if a["warnings"]:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot_group_metrics(result, path):
    """Bar chart of per-group accuracy and macro-F1 with their 95 % intervals.

    One row per attribute; small groups are hatched; the dashed line is the
    overall figure.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    attrs = list(result["attributes"])
    if not attrs:
        raise DataError("no attribute to plot")
    n_groups = max(len(result["attributes"][a]["groups"]) for a in attrs)
    fig, axes = plt.subplots(len(attrs), 2, squeeze=False,
                             figsize=(9, 1.2 + 0.45 * n_groups * len(attrs) + 0.6 * len(attrs)))
    for row, attr in enumerate(attrs):
        a = result["attributes"][attr]
        names = list(a["groups"])
        for col, (key, title) in enumerate((("accuracy", "accuracy"),
                                            ("macro_f1", "macro-F1"))):
            ax = axes[row][col]
            vals = np.array([a["groups"][g][key] for g in names], dtype=float)
            cis = [a["groups"][g][key + "_ci"] for g in names]
            err = None
            if all(c is not None for c in cis):
                err = np.array([[v - c[0] for v, c in zip(vals, cis, strict=True)],
                                [c[1] - v for v, c in zip(vals, cis, strict=True)]])
            colors = ["#cc3311" if g == a["worst_group"] else "#4477aa" for g in names]
            bars = ax.barh(range(len(names)), vals, xerr=err, color=colors, capsize=3,
                           edgecolor="black", linewidth=0.5)
            for b, g in zip(bars, names, strict=True):
                if a["groups"][g]["small"]:
                    b.set_hatch("//")
                    b.set_alpha(0.6)
            ax.axvline(result["overall"][key], color="black", linestyle="--", linewidth=1)
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels([f"{g} (n={a['groups'][g]['n']})" for g in names], fontsize=8)
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            gap = a["accuracy_gap"] if key == "accuracy" else a["macro_f1_gap"]
            ax.set_title(f"{attr}: {title} (gap {100 * gap:.1f} pts)", fontsize=9)
    fig.text(0.5, 0.005, "bars: 95 % bootstrap CI; red: worst group; hatched: below "
             f"{result['min_size']} images; dashed: overall", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["group_metrics", "group_metrics_markdown", "load_groups_csv", "plot_group_metrics"]
