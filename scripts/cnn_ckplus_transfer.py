"""CK+48 7-class, subject-grouped stratified 10-fold: FER-2013 transfer vs from scratch.

Usage (from the project root):
    python scripts/cnn_ckplus_transfer.py --arm scratch|transfer [--init PATH] [--epochs 8]

Folds: sklearn StratifiedGroupKFold(10, shuffle=True, random_state=0) on the subject ids,
so no subject is on both sides. Each fold trains a fixed number of epochs (no model
selection on the test fold). Transfer = FER-2013 weights with a new 7-way head (CK+48 has
contempt and no neutral), one head-only epoch, then all layers. Writes
``<results>/arms/ckplus_<arm>.json`` and regenerates ``<results>/ckplus_transfer.md`` from
every arm there (default results: experiments/ckplus-cnn-transfer/).

With --harness the arm runs through the shared evaluation harness instead
(classicfer.cnn_head.estimator.CNNClassifier in classicfer.evaluation.evaluate, protocol
subject-kfold: the folds of the classical CK+48 rows) and writes its report folder to
results/ckplus48/subject-kfold/cnn-<arm><tag>/ (metrics, confusion matrix, mistakes).

The checkpoint may be of any network family (vgg, resnet, mobilenet) and input size: the
48x48 crops are resized to the size it was trained at (``classicfer train-cnn --size 64``
gives 64x64), as its own training crops were.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _pooled(y, pred, classes) -> dict:
    """The pooled figures of all folds, under this script's key names."""
    from _metrics import f1_record

    rec = f1_record(y, pred, classes)
    return {"pooled_accuracy": rec["accuracy"], "pooled_macro_f1": rec["macro_f1"],
            "per_class_f1": rec["per_class_f1"]}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/ckplus48"))
    ap.add_argument("--arm", choices=["scratch", "transfer"], required=True)
    ap.add_argument("--init", action="append", default=None,
                    help="FER-2013 or FER+ checkpoint to start from, of any network family "
                         "and input size (default checkpoints/"
                         "fer2013-cnn-grow/best.pt, the grown network of "
                         "benchmarks/reproduce.sh); repeat it to give the members of "
                         "--members different starting points (member m uses init m mod n)")
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
    ap.add_argument("--head-from-fer", action="store_true",
                    help="start the new head's rows of the classes FER-2013 also has (by "
                         "name) from the FER-2013 head instead of a fresh head")
    ap.add_argument("--head-alias", action="append", default=[], metavar="CK=FER",
                    help="with --head-from-fer, also start class CK's row from FER class "
                         "FER's (e.g. contempt=neutral)")
    ap.add_argument("--align-margin", type=float, default=None,
                    help="re-cut every crop around its eyes first (classicfer.features."
                         "align_crops with this margin), as align=eyes does for the "
                         "classical features")
    ap.add_argument("--harness", action="store_true",
                    help="run the arm through the shared harness instead (classicfer."
                         "evaluation.evaluate with the CNN as a scikit-learn classifier, "
                         "protocol subject-kfold: the folds of the classical rows) and write "
                         "its report folder under results/ckplus48/subject-kfold/")
    ap.add_argument("--size", type=int, default=None,
                    help="with --harness, the side the crops are resized to (default: the "
                         "checkpoint's input size with --arm transfer, the crops' own "
                         "for --arm scratch)")
    ap.add_argument("--fold-seed", type=int, default=0,
                    help="with --harness, the seed of the harness's fold splitter (and "
                         "bootstrap); 0 is the partition of the classical rows, other seeds "
                         "repeat the cross-validation on other partitions")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite ckplus_transfer.md from the JSON files without training")
    ap.add_argument("--results", default=str(ROOT / "experiments/ckplus-cnn-transfer"))
    args = ap.parse_args(argv)
    args.init = args.init or [str(ROOT / "checkpoints/fer2013-cnn-grow/best.pt")]
    if args.fold_seed and not args.harness:
        ap.error("--fold-seed goes with --harness (the benchmark's own folds use seed 0)")
    if args.size is not None and (not args.harness or args.size < 1):
        ap.error("--size goes with --harness and takes a positive side, e.g. 64")
    if any("=" not in a for a in args.head_alias):
        ap.error("--head-alias takes CK=FER, e.g. contempt=neutral")

    from classicfer.cnn_head.train import resize_crops, to_tensor
    from classicfer.datasets import load_dataset

    cmd_args = ["python", "scripts/cnn_ckplus_transfer.py",
                *(argv if argv is not None else sys.argv[1:])]
    cmd = " ".join(cmd_args)
    ds = load_dataset(args.data)
    if args.harness:
        return run_harness(args, cmd_args, ds)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])
    groups = np.asarray(ds.subjects)
    images = ds.images
    if args.align_margin is not None:
        from classicfer.features import align_crops

        images = align_crops(images, margin=args.align_margin)
    res_dir = Path(args.results)
    if not args.render_only:
        if args.arm == "transfer":
            images = resize_crops(images, _init_size(args.init))
        run(args, cmd, to_tensor(images), y, groups, classes, res_dir)
    render(res_dir, classes, len(set(groups)), len(y))


def render(res_dir, classes, n_subjects, n_images):
    """Write ``res_dir/ckplus_transfer.md`` from every ``res_dir/arms/ckplus_*.json``."""
    from classicfer.cnn_head.train import default_lr

    arms = {}
    for f in sorted((res_dir / "arms").glob("ckplus_*.json")):
        r = json.loads(f.read_text())
        arms[r["arm"]] = r
    lines = ["# CK+48 7-class, subject-grouped stratified 10-fold: transfer vs scratch", "",
             "Produced by `scripts/cnn_ckplus_transfer.py` (commands below). Folds: "
             "`StratifiedGroupKFold(10, shuffle=True, random_state=0)` on subject ids "
             f"({n_subjects} subjects, {n_images} images) and class indices — a different "
             "partition from the harness's (`classicfer evaluate --protocol subject-kfold` "
             "stratifies on label names, which orders the classes otherwise); arms run with "
             "`--harness` use the harness's folds and are reported under "
             "`results/ckplus48/subject-kfold/cnn-*` instead. A fixed epoch count per fold, no "
             "model selection on the test fold. Classes: " + ", ".join(classes) + ". "
             "All arms use the same folds, so the best of these rows is itself chosen on the "
             "test folds: read the maximum as slightly optimistic (a handful of images per "
             "arm separate the top rows; one image is 0.10 point).", "",
             ("| arm | epochs/fold | peak lr | mean fold acc (± std) | pooled acc | "
              "pooled macro-F1 | CPU s |"), "|---|---|---|---|---|---|---|"]
    for a, r in arms.items():
        lines.append(f"| {a} | {r['epochs']} | {r.get('lr', default_lr('transfer' in a)):g} "
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
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold

    from classicfer.cnn_head.train import default_lr, fit, predict_logits

    starts = [member_start(path, classes, args) for path in args.init] \
        if args.arm == "transfer" else [(None, None, {})]
    lr = args.lr or default_lr(args.arm == "transfer")
    cv = StratifiedGroupKFold(n_splits=10, shuffle=True, random_state=0)
    pred = np.full(len(y), -1)
    fold_acc, t_cpu, t0 = [], time.process_time(), time.time()
    for k, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
        assert not set(groups[tr]) & set(groups[te])
        logits = 0
        for m in range(args.members):
            init_state, norm, config = starts[m % len(starts)]
            res = fit(x[tr], y[tr], None, None, classes=classes, epochs=args.epochs,
                      batch_size=32, lr=lr,
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
    out = {"arm": args.arm + args.tag, "lr": lr, "command": cmd, "epochs": args.epochs,
           "seed": args.seed,
           "tta_flip": args.tta_flip, "members": args.members,
           "init": (", ".join(args.init) if args.arm == "transfer" else None),
           "head_from_fer": args.head_from_fer, "head_alias": args.head_alias,
           "classes": classes, "fold_accuracy": fold_acc,
           "mean_fold_accuracy": float(np.mean(fold_acc)),
           "std_fold_accuracy": float(np.std(fold_acc)),
           **_pooled(y, pred, classes),
           "cpu_s": time.process_time() - t_cpu, "wall_s": time.time() - t0,
           "torch": torch.__version__}
    arms_dir = Path(args.results) / "arms"
    arms_dir.mkdir(parents=True, exist_ok=True)
    (arms_dir / f"ckplus_{args.arm}{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("mean_fold_accuracy", "pooled_accuracy",
                                          "pooled_macro_f1", "cpu_s")}))


def run_harness(args, cmd_args, ds):
    """The arm through classicfer's evaluation harness (same folds as ``classicfer evaluate
    --protocol subject-kfold``); writes the usual report folder.
    """
    if len(args.init) > 1 or args.head_from_fer or args.align_margin is not None:
        sys.exit("--harness takes one --init and no --head-from-fer/--align-margin")
    from tqdm.auto import tqdm

    from classicfer.cnn_head.estimator import CNNClassifier
    from classicfer.evaluation import evaluate, report_dir, write_report

    transfer = args.arm == "transfer"
    est = CNNClassifier(init=args.init[0] if transfer else None, epochs=args.epochs, lr=args.lr,
                        members=args.members, tta_flip=args.tta_flip, seed=args.seed,
                        threads=args.threads, size=args.size)
    how = _harness_how(args, ds) if transfer else "trained from scratch"
    if not transfer and args.size is not None:
        how += f" on crops resized to {args.size}x{args.size}"
    name = f"cnn-{args.arm}{args.tag}"
    res = evaluate(est, ds, "subject-kfold", name=name, seed=args.fold_seed,
                   progress=lambda it: tqdm(it, desc="folds", unit="fold"))
    res.notes.append(f"{how}; {args.epochs} epochs per fold, {args.members} network(s) per fold"
                     + (", flip-averaged at test time" if args.tta_flip else "")
                     + (f"; fold seed {args.fold_seed}" if args.fold_seed else ""))
    out = report_dir(ROOT / "results", res)
    m = write_report(res, ds, out, command=cmd_args)
    print(f"{name}: accuracy {m['accuracy']:.4f} {m['accuracy_ci95']}, macro-F1 "
          f"{m['macro_f1']:.4f}; report: {out}")


def _harness_how(args, ds) -> str:
    """How the harness arm starts: the checkpoint's network family and input size."""
    from classicfer.cnn_head.train import checkpoint_size

    ck = _checkpoint(args.init[0])
    arch = ck["config"].get("arch", "vgg")
    h, w = checkpoint_size(ck)
    side = (args.size, args.size) if args.size is not None else (h, w)
    crops = tuple(np.asarray(ds.images).shape[1:])
    run_at = (f"run at {side[0]}x{side[1]}" if crops == side else
              f"the {crops[0]}x{crops[1]} crops resized to {side[0]}x{side[1]}")
    return (f"fine-tuned from the {arch} checkpoint {args.init[0]}, trained on {h}x{w} "
            f"crops ({run_at}; new head, one head-only epoch, then all layers)")


def _checkpoint(path) -> dict:
    """The checkpoint dict at ``path``; a one-line exit when it is missing or unreadable."""
    from classicfer.cnn_head.train import load_checkpoint
    from classicfer.exceptions import ClassicferError

    try:
        return load_checkpoint(path)[1]
    except ClassicferError as e:
        sys.exit(f"Error: {e}")


def _init_size(paths) -> tuple:
    """The input size all the ``--init`` checkpoints were trained at (one for all members)."""
    from classicfer.cnn_head.train import checkpoint_size

    sizes = {checkpoint_size(_checkpoint(p)) for p in paths}
    if len(sizes) > 1:
        sys.exit(f"the --init checkpoints were trained at different sizes ({sorted(sizes)}); "
                 "give checkpoints of one input size")
    return sizes.pop()


def member_start(path, classes, args):
    """(state dict without or with a mapped head, FER-2013 normalisation, model config)."""
    import torch

    from classicfer.cnn_head.train import load_checkpoint, start_from

    _, ck = load_checkpoint(path)
    state, norm, config = start_from(ck)  # no head
    if args.head_from_fer:
        alias = dict(a.split("=", 1) for a in args.head_alias)
        fer = list(ck["classes"])
        w, b = ck["model"]["head.weight"], ck["model"]["head.bias"]
        fresh = torch.nn.Linear(w.shape[1], len(classes))  # rows with no FER-2013 twin
        torch.manual_seed(args.seed)
        fresh.reset_parameters()
        hw, hb = fresh.weight.detach().clone(), fresh.bias.detach().clone()
        for i, c in enumerate(classes):
            src = alias.get(c, c)
            if src in fer:
                hw[i], hb[i] = w[fer.index(src)], b[fer.index(src)]
        state["head.weight"], state["head.bias"] = hw, hb
    return state, norm, config


if __name__ == "__main__":
    main()
