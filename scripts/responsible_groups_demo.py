"""Demonstrate per-group evaluation on CK+48 with NON-demographic groups.

Neither FER-2013 nor CK+48 has demographic labels, and classicfer never invents them.
This script shows the ``--groups`` workflow with two groupings that really exist in
CK+48's file names:

- ``subject_block``: subjects split into three blocks by id range (S005-S0xx ...),
  i.e. roughly by recording period. Not a demographic attribute.
- ``frame``: which of the last three frames of its sequence the image is
  (``peak-2``, ``peak-1``, ``peak``); expression intensity grows towards the peak.

It writes ``groups.csv`` and runs (from the project root)::

    classicfer evaluate --data ../shared/datasets/ckplus48 --protocol subject-kfold \
        --features hog --classifier linear-svm --name hog-linear-svm-groups-demo \
        --groups results/responsible/ckplus48-subject-blocks/groups.csv \
        --out results/responsible/ckplus48-subject-blocks --seed 0 --gallery 0 --quiet

The harness writes metrics.json, groups.json, groups.png and run.json (command,
versions, seed, git commit) under ``results/responsible/ckplus48-subject-blocks/``;
this script adds ``README.md`` rendered from ``groups.json``.
THIS IS A DEMONSTRATION OF THE TOOLING, NOT A FAIRNESS RESULT.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subject_blocks(subjects, n_blocks=3):
    """Subject id -> 'S005-S0xx' block label, blocks of (nearly) equal subject counts."""
    ids = sorted(set(subjects), key=lambda s: int(re.sub(r"\D", "", s) or 0))
    out = {}
    size = -(-len(ids) // n_blocks)
    for b in range(n_blocks):
        chunk = ids[b * size:(b + 1) * size]
        for s in chunk:
            out[s] = f"{chunk[0]}-{chunk[-1]}"
    return out


def frame_positions(paths):
    """Path -> 'peak-2' / 'peak-1' / 'peak' by frame number within its sequence."""
    seqs = {}
    for p in paths:
        m = re.match(r"(S\d+_\d+)_(\d+)", os.path.basename(p))
        seqs.setdefault(m.group(1), []).append((int(m.group(2)), p))
    out = {}
    for frames in seqs.values():
        frames.sort()
        n = len(frames)
        for k, (_, p) in enumerate(frames):
            out[p] = "peak" if k == n - 1 else f"peak-{n - 1 - k}"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/ckplus48"))
    ap.add_argument("--out", default=str(ROOT / "results/responsible/ckplus48-subject-blocks"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--readme-only", action="store_true",
                    help="only re-render README.md from an existing groups.json")
    args = ap.parse_args(argv)

    out = Path(args.out)
    name = "hog-linear-svm-groups-demo"
    if not args.readme_only:
        run_evaluation(args, out, name)
    write_readme(args, out, name)


def run_evaluation(args, out, name):
    from classicfer.datasets import load_dataset

    ds = load_dataset(args.data)
    out.mkdir(parents=True, exist_ok=True)
    blocks = subject_blocks(ds.subjects)
    frames = frame_positions(ds.paths)
    groups_csv = out / "groups.csv"
    with open(groups_csv, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "subject_block", "frame"])
        for p, s in zip(ds.paths, ds.subjects, strict=True):
            w.writerow([os.path.relpath(p, ds.root), blocks[s], frames[p]])

    cmd = [str(Path(sys.executable).with_name("classicfer")), "evaluate", "--data", args.data,
           "--protocol", "subject-kfold", "--features", "hog", "--classifier", "linear-svm",
           "--name", name, "--groups", str(groups_csv), "--out", str(out),
           "--seed", str(args.seed), "--gallery", "0", "--quiet"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = next(out.glob(f"*/subject-kfold/{name}"))
    # No gallery of CK+ faces in the repository: the CK+ agreement restricts publishing
    # subjects' images (and with --gallery 0 the file is only a placeholder).
    (report / "misclassified.png").unlink(missing_ok=True)


def write_readme(args, out, name):
    report = next(out.glob(f"*/subject-kfold/{name}"))
    g = json.loads((report / "groups.json").read_text())
    from classicfer.evaluation.fairness import group_metrics_markdown

    rel = report.relative_to(ROOT)
    metrics = json.loads((report / "metrics.json").read_text())
    blocks = g["attributes"]["subject_block"]["groups"]
    rarest = min(metrics["per_class"], key=lambda c: metrics["per_class"][c]["support"])
    share = {b: r["support"][rarest] for b, r in blocks.items()}
    mix = (f"{rarest}: " + ", ".join(f"{n} of {sum(share.values())} images in {b}"
                                     for b, n in share.items())
           + f"; its recall is {100 * metrics['per_class'][rarest]['recall']:.1f} % overall")
    text = [
        "# Per-group evaluation workflow on CK+48 (demonstration)",
        "",
        ("**This is a demonstration of the tooling, not a fairness result.** CK+48 has no "
        "demographic labels and classicfer never infers them. The two groupings below exist "
        "in the file names: `subject_block` splits the 118 subjects into three blocks by id "
        "range (roughly, recording period), `frame` is the position of the image among the "
        "last three frames of its sequence (`peak` is the most intense expression)."),
        "",
        (f"Model: HOG + linear SVM, subject-grouped 10-fold cross-validation, seed "
        f"{args.seed}. Generated by `scripts/responsible_groups_demo.py`; the command, "
        f"versions and git commit are in `{rel}/run.json`, all figures in "
        f"`{rel}/groups.json`, the plot in `{rel}/groups.png`."),
        "",
        (f"Overall: {g['overall']['n']} images, accuracy {100 * g['overall']['accuracy']:.1f} %, "
        f"macro-F1 {100 * g['overall']['macro_f1']:.1f} %."),
        "",
        ("Intervals are percentile bootstraps over images within a group; images of one "
        "subject are correlated (3 frames per sequence, several sequences per subject), so "
        "these intervals are too narrow for subject-level claims."),
        "",
        (f"Reading the table: the subject blocks differ in their class mix ({mix}), so "
         "an accuracy gap between "
         "blocks can come from which classes they contain as much as from who is in them; "
         "per-class true-positive-rate gaps and macro-F1 are the fairer comparison. A "
         "macro-F1 interval can be wide and lopsided when a rare class has only a few "
         "images in a group (resamples without it average over fewer classes)."),
        "",
        group_metrics_markdown(g),
        ("No gallery of misclassified faces is kept: the CK+ agreement restricts publishing "
        "subjects' images."),
        "",
        "Command:",
        "",
        "```",
        "python scripts/responsible_groups_demo.py",
        "```",
        "",
    ]
    (out / "README.md").write_text("\n".join(text))
    print(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
