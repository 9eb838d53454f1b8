r"""Train the FER+ network of the shipped default, from the FER-2013 checkpoint.

Recipe (one command; resumable with --resume, checkpoints under --ckpt):

* data: FER+ train (majority images, 25,045), selection on FER+ val (PublicTest rows);
* targets: the annotators' vote distribution (Barsoum et al. 2016, "probability" mode)
  mixed with FER-2013's own label of the same face (weight --fer-weight), matched by pixels;
* class weights: inverse square root of each class's share of the targets (contempt 1);
* augmentation: the trainer's affine + erasing, plus the corruption families of the
  robustness suite (classicfer.cnn_head._corrupt) at --corrupt;
* start: checkpoints-shipped/fer2013-cnn/best.pt, its 7-class head extended by contempt.

Selection (declared before any result): among runs of this recipe, the one with the best
mean of FER+ val majority accuracy and the FER+ val robustness mean at severity 3
(``benchmarks/generalisation.py --split val --robustness``); CK+48 and the test splits
play no part.

Example::

    python scripts/train_ferplus.py --epochs 30 --ckpt checkpoints/ferplus-a
    python scripts/train_ferplus.py --ckpt checkpoints/ferplus-a \
        --export classicfer/bundled_models/ferplus-cnn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def fer_labels_for(ferplus, fer, classes):
    """Index into ``classes`` of FER-2013's label of each FER+ image (-1 when unmatched).

    The same faces (PNG from the CSV vs JPEG in the folder layout): matched within each
    split by nearest neighbour on 8x8 block means, accepted when the RMSE is <= 4 levels.
    """
    from sklearn.neighbors import NearestNeighbors

    out = np.full(len(ferplus), -1)
    for split in ("train", "val", "test"):
        a = np.flatnonzero(ferplus.splits == split)
        b = np.flatnonzero(fer.splits == split)
        if not len(a) or not len(b):
            continue
        fa = ferplus.images[a].reshape(len(a), 8, 6, 8, 6).mean(axis=(2, 4)).reshape(len(a), -1)
        fb = fer.images[b].reshape(len(b), 8, 6, 8, 6).mean(axis=(2, 4)).reshape(len(b), -1)
        nn = NearestNeighbors(n_neighbors=1).fit(fb)
        _, j = nn.kneighbors(fa)
        j = b[j[:, 0]]
        rmse = np.sqrt(((ferplus.images[a].astype(np.float32)
                         - fer.images[j].astype(np.float32)) ** 2).mean(axis=(1, 2)))
        ok = rmse <= 4.0
        out[a[ok]] = [classes.index(c) for c in fer.labels[j[ok]]]
    return out


def extended_head(state, old_classes, classes):
    """The checkpoint's head rows re-ordered for ``classes``; new classes start at zero."""
    import torch

    w, b = state["head.weight"], state["head.bias"]
    nw = torch.zeros(len(classes), w.shape[1])
    nb = torch.full((len(classes),), float(b.min()) - 1.0)
    for i, c in enumerate(classes):
        if c in old_classes:
            nw[i], nb[i] = w[old_classes.index(c)], b[old_classes.index(c)]
    return dict(state, **{"head.weight": nw, "head.bias": nb})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ferplus", default="../shared/datasets/ferplus")
    ap.add_argument("--fer2013", default="../shared/datasets/fer2013")
    ap.add_argument("--init", default="checkpoints-shipped/fer2013-cnn/best.pt")
    ap.add_argument("--ckpt", default="checkpoints/ferplus-cnn")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--fer-weight", type=float, default=0.3)
    ap.add_argument("--corrupt", type=float, default=1.0)
    ap.add_argument("--balance", type=float, default=0.5,
                    help="class weight = share ** -balance (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, choices=(48, 64), default=48,
                    help="input side: FER+'s 48x48 crops are resized to SIZE x SIZE")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--stop-after", type=int, default=None)
    ap.add_argument("--export", default=None, metavar="DIR",
                    help="export CKPT/best.pt (flip averaging in the graph) to DIR and stop")
    ap.add_argument("--name", default="ferplus-cnn", help="model name written by --export")
    args = ap.parse_args(argv)
    if args.export:
        return export(args)

    import torch

    from classicfer.cnn_head.train import DEFAULT_AUG, fit, load_checkpoint, resize_crops
    from classicfer.datasets import load_dataset, vote_distribution

    t0 = time.process_time()
    ds = load_dataset(args.ferplus, "ferplus")
    classes = ds.classes
    fer = load_dataset(args.fer2013)
    fer_idx = fer_labels_for(ds, fer, classes)
    tr, va = np.flatnonzero(ds.splits == "train"), np.flatnonzero(ds.splits == "val")
    print(f"FER-2013 label matched for {np.mean(fer_idx[tr] >= 0):.1%} of FER+ train",
          file=sys.stderr)
    target = vote_distribution(ds.votes[tr], classes)
    m = fer_idx[tr] >= 0
    onehot = np.eye(len(classes), dtype=np.float32)[fer_idx[tr][m]]
    target[m] = (1 - args.fer_weight) * target[m] + args.fer_weight * onehot
    share = target.mean(axis=0)
    weight = (share / share.mean()) ** -args.balance if args.balance else np.ones(len(classes))
    weight[classes.index("contempt")] = 1.0
    weight = weight / weight.mean()
    print("class weights:", dict(zip(classes, np.round(weight, 2), strict=True)), file=sys.stderr)

    model0, ck = load_checkpoint(args.init)
    state = extended_head(model0.state_dict(), list(ck["classes"]), classes)
    config = {k: v for k, v in ck["config"].items() if k != "n_classes"}
    y_val = np.array([classes.index(c) for c in ds.labels[va]])
    aug = dict(DEFAULT_AUG, corrupt=args.corrupt)
    images = resize_crops(ds.images, args.size)
    res = fit(images[tr], target, images[va], y_val, classes=classes,
              epochs=args.epochs, out_dir=args.ckpt, model_config=config, lr=args.lr,
              warmup=args.warmup, label_smoothing=0.0, seed=args.seed, aug=aug,
              init_state=state, resume=args.resume, stop_after=args.stop_after,
              threads=args.threads, class_weight=weight, norm=(ck["mean"], ck["std"]),
              progress=False, log=lambda s: print(s, file=sys.stderr, flush=True))
    summary = {"command": " ".join(sys.argv), "best_epoch": res["best_epoch"],
               "val_acc": res["best_val_acc"], "cpu_s": time.process_time() - t0,
               "class_weight": dict(zip(classes, map(float, weight), strict=True)),
               "args": vars(args), "torch": torch.__version__}
    with open(f"{args.ckpt}/summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


def export(args):
    """Write the deployment folder of ``ckpt/best.pt`` and check ONNX parity on FER+ val."""
    from classicfer.cnn_head.train import checkpoint_size, load_checkpoint, resize_crops
    from classicfer.datasets import load_dataset
    from classicfer.export import FlipAverage, cnn_parity, export_model, latency_ms

    model, ck = load_checkpoint(f"{args.ckpt}/best.pt")
    size = checkpoint_size(ck)
    summary = json.loads(Path(args.ckpt, "summary.json").read_text())
    ds = load_dataset(args.ferplus, "ferplus").split("val")
    training = {"dataset": "ferplus", "targets": "votes mixed with FER-2013 labels",
                "recipe": summary["command"], "best_epoch": summary["best_epoch"],
                "epochs": summary["args"]["epochs"], "cpu_s": summary["cpu_s"],
                "init": summary["args"]["init"], "history": ck.get("history", [])}
    out = export_model(model, args.export, classes=ck["classes"], mean=ck["mean"],
                       std=ck["std"], size=size, name=args.name, training=training,
                       metrics={"ferplus_val_accuracy": summary["val_acc"]}, tta_flip=True)
    diff = cnn_parity(FlipAverage(model), out, resize_crops(ds.images[:256], size))["max_abs_diff"]
    print(json.dumps({"model": str(out), "parity_max_abs_diff": diff,
                      "latency": latency_ms(out)}))


if __name__ == "__main__":
    main()
