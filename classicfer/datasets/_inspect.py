"""What is in a dataset: counts, sizes, subjects, unreadable files, exact duplicates."""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict

import numpy as np

from ._base import Dataset

_SPLIT_ORDER = ("train", "val", "test", "")


def pixel_hashes(ds: Dataset) -> list[str]:
    """A hash of each image's decoded pixels (shape included): equal hashes = identical images."""
    out = []
    for img in ds.images:
        a = np.ascontiguousarray(img)
        out.append(hashlib.blake2b(repr(a.shape).encode() + a.tobytes(),
                                   digest_size=16).hexdigest())
    return out


def find_duplicates(ds: Dataset) -> dict:
    """Exact duplicate images (same decoded pixels), within and across splits.

    Returns
    -------
    dict with
        ``groups`` : number of pixel contents that occur more than once,
        ``images_in_groups`` : images that have at least one identical twin,
        ``redundant`` : images that could be removed (sum of group size - 1),
        ``cross_split_groups`` : groups that span more than one split,
        ``leaks`` : {"val": n, "test": n, ...}: images of that split whose pixels also occur
        in train (the train/test leak), plus ``"val&test"``: test images also in val,
        ``label_conflicts`` : groups whose copies carry different labels,
        ``examples`` : up to 5 cross-split groups as lists of paths.
    """
    by_hash = defaultdict(list)
    for i, h in enumerate(pixel_hashes(ds)):
        by_hash[h].append(i)
    groups = [g for g in by_hash.values() if len(g) > 1]
    splits, labels = ds.splits, ds.labels
    cross = [g for g in groups if len({splits[i] for i in g}) > 1]
    train_hashes = {h for h, g in by_hash.items() if any(splits[i] == "train" for i in g)}
    val_hashes = {h for h, g in by_hash.items() if any(splits[i] == "val" for i in g)}
    leaks = {}
    for h, g in by_hash.items():
        for i in g:
            sp = splits[i]
            if sp and sp != "train" and h in train_hashes:
                leaks[sp] = leaks.get(sp, 0) + 1
            if sp == "test" and h in val_hashes:
                leaks["val&test"] = leaks.get("val&test", 0) + 1
    return {
        "groups": len(groups),
        "images_in_groups": int(sum(len(g) for g in groups)),
        "redundant": int(sum(len(g) - 1 for g in groups)),
        "cross_split_groups": len(cross),
        "leaks": leaks,
        "label_conflicts": sum(1 for g in groups if len({labels[i] for i in g}) > 1),
        "examples": [[str(ds.paths[i]) for i in g] for g in cross[:5]],
    }


def _modes(ds: Dataset, sample: int) -> dict:
    """Pillow modes of up to ``sample`` source files (evenly spaced)."""
    from PIL import Image

    paths = [str(p) for p in ds.paths]
    if not paths or not os.path.isfile(paths[0]):
        return {"modes": {"L (pixels in CSV)": len(paths)} if paths else {}, "sampled": 0}
    idx = np.unique(np.linspace(0, len(paths) - 1, min(sample, len(paths))).astype(int))
    modes = Counter()
    for i in idx:
        try:
            with Image.open(paths[i]) as im:
                modes[f"{im.format} {im.mode}"] += 1
        except Exception:  # noqa: BLE001 -- any decoder error means unreadable
            modes["unreadable"] += 1
    return {"modes": dict(modes.most_common()), "sampled": len(idx)}


def inspect_dataset(ds: Dataset, *, sample_modes: int = 500, duplicates: bool = True) -> dict:
    """A JSON-ready summary of ``ds`` (the ``classicfer data inspect`` report).

    Keys: ``name``, ``format``, ``root``, ``n_images``, ``classes``, ``splits``,
    ``counts`` ({label: {split: n}}), ``sizes`` ({"HxW": n}), ``modes`` (file format and
    Pillow mode of a sample of ``sample_modes`` files), ``n_subjects`` (None if unknown),
    ``blank_images`` (constant images), ``skipped`` (count, first paths and reasons),
    ``duplicates`` (:func:`find_duplicates`), ``manifest_hash``.
    """
    from .manifest import manifest_hash

    splits = [s for s in _SPLIT_ORDER if s in set(ds.splits)]
    counts = {c: {s: int(np.sum((ds.labels == c) & (ds.splits == s))) for s in splits}
              for c in ds.classes}
    if isinstance(ds.images, np.ndarray):
        sizes = Counter({f"{ds.images.shape[1]}x{ds.images.shape[2]}": len(ds)} if len(ds)
                        else {})
    else:
        sizes = Counter(f"{im.shape[0]}x{im.shape[1]}" for im in ds.images)
    if isinstance(ds.images, np.ndarray) and len(ds):
        flat = ds.images.reshape(len(ds), -1)
        blank = int(np.sum(flat.min(axis=1) == flat.max(axis=1)))
    else:
        blank = int(sum(np.ptp(im) == 0 for im in ds.images))
    skipped_reasons = Counter(
        "not an emotion" if "not an emotion" in r else
        "no majority vote" if "no majority emotion" in r else
        "not a dataset file name" if "file name" in r else "unreadable" for _, r in ds.skipped)
    out = {
        "name": ds.name, "format": ds.format, "root": ds.root, "n_images": len(ds),
        "classes": ds.classes, "splits": [s or "(none)" for s in splits],
        "counts": {c: {(s or "(none)"): n for s, n in v.items()} for c, v in counts.items()},
        "sizes": dict(sizes.most_common()),
        **_modes(ds, sample_modes),
        "n_subjects": None if ds.subjects is None else len(set(ds.subjects)),
        "blank_images": blank,
        "skipped": {"count": len(ds.skipped), "by_kind": dict(skipped_reasons),
                    "first": [{"path": str(p), "reason": str(r)} for p, r in ds.skipped[:5]]},
        "manifest_hash": manifest_hash(ds),
    }
    if ds.votes is not None:
        from ._ferplus import vote_summary

        out["votes"] = vote_summary(ds)
    if duplicates:
        out["duplicates"] = find_duplicates(ds)
    return out


def _votes_lines(v: dict) -> list[str]:
    ex = v["excluded_no_majority"]
    lines = ["excluded   " + (", ".join(f"{k}: {n:,}" for k, n in ex.items()) or "none")
             + " (no majority emotion among the annotators' votes)",
             "agreement  share of the votes that went to the label (images):"]
    top = max(v["agreement_histogram"].values(), default=1)
    for k, n in v["agreement_histogram"].items():
        lines.append(f"  {k:>5} {n:>7,} " + "#" * max(1, round(40 * n / top)))
    return lines


def format_report(rep: dict) -> str:
    """The text table printed by ``classicfer data inspect``."""
    splits = rep["splits"]
    lines = [f"dataset    {rep['name']} (format {rep['format']})",
             f"root       {rep['root']}",
             f"images     {rep['n_images']:,}",
             f"subjects   {rep['n_subjects'] if rep['n_subjects'] is not None else 'unknown'}",
             "sizes      " + ", ".join(f"{k}: {v:,}" for k, v in list(rep["sizes"].items())[:5])
             + (f" (+{len(rep['sizes']) - 5} more)" if len(rep["sizes"]) > 5 else ""),
             "modes      " + ", ".join(f"{k}: {v:,}" for k, v in rep["modes"].items())
             + (f" (of {rep['sampled']} files sampled)" if rep["sampled"] else ""),
             ""]
    w = max([len("class"), len("total")] + [len(c) for c in rep["classes"]])
    cols = splits + (["total"] if len(splits) > 1 else [])
    lines.append(f"{'class':<{w}}" + "".join(f"{s:>9}" for s in cols))
    tot = dict.fromkeys(splits, 0)
    for c in rep["classes"]:
        row = [rep["counts"][c].get(s, 0) for s in splits]
        for s, n in zip(splits, row, strict=True):
            tot[s] += n
        if len(splits) > 1:
            row.append(sum(row))
        lines.append(f"{c:<{w}}" + "".join(f"{n:>9,}" for n in row))
    trow = [tot[s] for s in splits] + ([sum(tot.values())] if len(splits) > 1 else [])
    lines.append(f"{'total':<{w}}" + "".join(f"{n:>9,}" for n in trow))
    lines.append("")
    sk = rep["skipped"]
    lines.append(f"skipped    {sk['count']:,}" + (
        " (" + ", ".join(f"{k}: {v:,}" for k, v in sk["by_kind"].items()) + ")"
        if sk["count"] else ""))
    for item in sk["first"]:
        lines.append(f"           {item['reason']}")
    lines.append(f"blank      {rep['blank_images']:,} constant (all pixels equal) images")
    if rep.get("votes"):
        lines += _votes_lines(rep["votes"])
    d = rep.get("duplicates")
    if d is not None:
        leaks = ", ".join(f"{k} images also in train: {v:,}" if k != "val&test" else
                          f"test images also in val: {v:,}" for k, v in sorted(d["leaks"].items()))
        lines.append(f"duplicates {d['groups']:,} groups of identical images "
                     f"({d['images_in_groups']:,} images, {d['redundant']:,} redundant); "
                     f"{d['cross_split_groups']:,} groups span splits; "
                     f"{d['label_conflicts']:,} groups with conflicting labels")
        if leaks:
            lines.append(f"leakage    {leaks}")
    lines.append(f"manifest   sha256 {rep['manifest_hash']}")
    return "\n".join(lines)
