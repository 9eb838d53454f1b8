"""CK+48 7-class, subject-grouped stratified 10-fold: FER-2013 transfer vs from scratch.

Usage (from the project root):
    python benchmarks/cnn_ckplus_transfer.py --arm scratch|transfer [--init PATH] [--epochs 8]

Folds: sklearn StratifiedGroupKFold(10, shuffle=True, random_state=0) on the subject ids,
so no subject is on both sides. Each fold trains a fixed number of epochs (no model
selection on the test fold). Transfer = FER-2013 weights with a new 7-way head (CK+48 has
contempt and no neutral), one head-only epoch, then all layers. Writes
results/cnn/ckplus_<arm>.json and, when both arms exist, results/cnn/ckplus_transfer.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/ckplus48"))
    ap.add_argument("--arm", choices=["scratch", "transfer"], required=True)
    ap.add_argument("--init", default=str(ROOT / "checkpoints/fer2013-cnn-phase2/best.pt"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=None,
                    help="peak learning rate (default 1e-3 transfer, 3e-3 scratch)")
    ap.add_argument("--tag", default="", help="suffix of the result file, for variants")
    ap.add_argument("--tta-flip", action="store_true",
                    help="average each test crop's logits with its mirror image's")
    ap.add_argument("--members", type=int, default=1,
                    help="models per fold (seeds differ), logits averaged")
    ap.add_argument("--align-margin", type=float, default=None,
                    help="re-cut every crop around its eyes first (classicfer.features."
                         "align_crops with this margin), as align=eyes does for the "
                         "classical features")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite ckplus_transfer.md from the JSON files without training")
    ap.add_argument("--results", default=str(ROOT / "results/cnn"))
    args = ap.parse_args(argv)


    from classicfer.cnn_head.train import to_tensor
    from classicfer.datasets import load_dataset

    cmd = "python benchmarks/cnn_ckplus_transfer.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    ds = load_dataset(args.data)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])
    groups = np.asarray(ds.subjects)
    images = ds.images
    if args.align_margin is not None:
        from classicfer.features import align_crops

        images = align_crops(images, margin=args.align_margin)
    x = to_tensor(images)
    res_dir = Path(args.results)
    if not args.render_only:
        run(args, cmd, x, y, groups, classes, res_dir)
    arms = {}
    for f in sorted(res_dir.glob("ckplus_*.json")):
        r = json.loads(f.read_text())
        arms[r["arm"]] = r
    lines = ["# CK+48 7-class, subject-grouped stratified 10-fold: transfer vs scratch", "",
             "Produced by `benchmarks/cnn_ckplus_transfer.py` (commands below). Folds: "
             "`StratifiedGroupKFold(10, shuffle=True, random_state=0)` on subject ids "
             f"({len(set(groups))} subjects, {len(y)} images); a fixed epoch count per fold, no "
             "model selection on the test fold. Classes: " + ", ".join(classes) + ".", "",
             ("| arm | epochs/fold | peak lr | mean fold acc (± std) | pooled acc | "
              "pooled macro-F1 | CPU s |"), "|---|---|---|---|---|---|---|"]
    for a, r in arms.items():
        lines.append(f"| {a} | {r['epochs']} | {r.get('lr', 1e-3 if 'transfer' in a else 3e-3):g} "
                     f"| {r['mean_fold_accuracy']:.4f} ± "
                     f"{r['std_fold_accuracy']:.4f} | {r['pooled_accuracy']:.4f} | "
                     f"{r['pooled_macro_f1']:.4f} | {r['cpu_s']:.0f} |")
    lines += ["", "Per-class F1 (pooled over folds):", "",
              "| arm | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for a, r in arms.items():
        lines.append(f"| {a} | " + " | ".join(f"{r['per_class_f1'][c]:.3f}" for c in classes)
                     + " |")
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" + (f" (init: {r['init']})"
                                                                  if r["init"] else "")
                                      for r in arms.values()]
    (res_dir / "ckplus_transfer.md").write_text("\n".join(lines) + "\n")


def run(args, cmd, x, y, groups, classes, res_dir):
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    from classicfer.cnn_head.train import fit, load_checkpoint, predict_logits

    init_state, norm, config = None, None, {}
    if args.arm == "transfer":
        _, ck = load_checkpoint(args.init)
        init_state = {k: v for k, v in ck["model"].items() if not k.startswith("head.")}
        norm = (ck["mean"], ck["std"])
        config = {k: v for k, v in ck["config"].items() if k != "n_classes"}
    cv = StratifiedGroupKFold(n_splits=10, shuffle=True, random_state=0)
    pred = np.full(len(y), -1)
    fold_acc, t_cpu, t0 = [], time.process_time(), time.time()
    for k, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
        assert not set(groups[tr]) & set(groups[te])
        logits = 0
        for m in range(args.members):
            res = fit(x[tr], y[tr], None, None, classes=classes, epochs=args.epochs,
                      batch_size=32, lr=args.lr or (1e-3 if args.arm == "transfer" else 3e-3),
                      seed=args.seed + k + 1000 * m, init_state=init_state, norm=norm,
                      model_config=config, freeze_epochs=1 if args.arm == "transfer" else 0,
                      threads=args.threads, progress=False, log=lambda m: None)
            logits = logits + predict_logits(res["model"], x[te], res["mean"], res["std"],
                                             flip=args.tta_flip).softmax(1)
        p = logits.argmax(1).numpy()
        pred[te] = p
        fold_acc.append(float(accuracy_score(y[te], p)))
        print(f"[{time.strftime('%H:%M:%S')}] {args.arm} fold {k + 1}/10: "
              f"acc {fold_acc[-1]:.4f} ({len(te)} images, {len(set(groups[te]))} subjects)",
              flush=True)
    out = {"arm": args.arm + args.tag, "lr": args.lr or (1e-3 if args.arm == "transfer" else 3e-3), "command": cmd, "epochs": args.epochs, "seed": args.seed,
           "tta_flip": args.tta_flip, "members": args.members,
           "init": args.init if args.arm == "transfer" else None,
           "classes": classes, "fold_accuracy": fold_acc,
           "mean_fold_accuracy": float(np.mean(fold_acc)),
           "std_fold_accuracy": float(np.std(fold_acc)),
           "pooled_accuracy": float(accuracy_score(y, pred)),
           "pooled_macro_f1": float(f1_score(y, pred, average="macro")),
           "per_class_f1": dict(zip(classes, map(float, f1_score(y, pred, average=None)))),
           "cpu_s": time.process_time() - t_cpu, "wall_s": time.time() - t0,
           "torch": torch.__version__}
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / f"ckplus_{args.arm}{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("mean_fold_accuracy", "pooled_accuracy",
                                          "pooled_macro_f1", "cpu_s")}))


if __name__ == "__main__":
    main()
