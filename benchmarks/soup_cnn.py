"""Average the weights of several FER-2013 CNN checkpoints (a uniform "model soup").

Usage (from the project root):
    python benchmarks/soup_cnn.py --ckpt checkpoints/a/best.pt --ckpt checkpoints/b/best.pt \
        --out checkpoints/fer2013-cnn-soup/best.pt

The members must be continuations of one starting checkpoint (same architecture, same
input normalisation). The parameters are averaged, batch-norm statistics recomputed on
8,192 Training images (seed 0), and every member and the soup are scored on PublicTest
(selection) and PrivateTest (report), with and without flip averaging. The soup is written
in the training checkpoint format, so ``export_cnn.py --ckpt`` takes it. An ensemble row
(the members' probabilities averaged; k times the inference cost, so not a shippable model)
shows how much the members differ at all. Figures go to
results/cnn/soup.{json,md} with the command.
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
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/fer2013"))
    ap.add_argument("--ckpt", action="append", required=True, help="a member (repeat)")
    ap.add_argument("--out", required=True, help="where to write the soup checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default=str(ROOT / "results/cnn"))
    args = ap.parse_args(argv)

    import torch
    from sklearn.metrics import accuracy_score, f1_score

    from classicfer.cnn_head.train import (
        average_weights,
        load_checkpoint,
        predict_logits,
        to_tensor,
    )
    from classicfer.datasets import load_dataset

    torch.set_num_threads(args.threads)
    cmd = "python benchmarks/soup_cnn.py " + " ".join(argv if argv is not None else sys.argv[1:])
    t_cpu = time.process_time()
    members = [load_checkpoint(p) for p in args.ckpt]
    ck0 = members[0][1]
    for p, (_, ck) in zip(args.ckpt, members):
        if (ck["mean"], ck["std"], list(ck["classes"])) != (ck0["mean"], ck0["std"],
                                                            list(ck0["classes"])):
            sys.exit(f"error: {p}: another input normalisation or class list than {args.ckpt[0]}")
    ds = load_dataset(args.data)
    classes = list(ck0["classes"])
    if list(ds.classes) != classes:
        sys.exit(f"error: the dataset's classes {ds.classes} are not the checkpoints' {classes}")
    y = np.array([classes.index(c) for c in ds.labels])
    split = {s: np.flatnonzero(ds.splits == s) for s in ("train", "val", "test")}
    bn_idx = np.random.default_rng(0).permutation(split["train"])[:8192]
    mean, std = ck0["mean"], ck0["std"]
    soup = average_weights([m for m, _ in members], to_tensor(ds.images[bn_idx]), mean, std)

    crops = {s: to_tensor(ds.images[split[s]]) for s in ("val", "test")}

    def score(models):
        """Accuracy / macro-F1 of the mean of the models' class probabilities."""
        row = {}
        for name, s in (("PublicTest", "val"), ("PrivateTest", "test")):
            x = crops[s]
            for flip in (False, True):
                prob = sum(torch.softmax(predict_logits(m, x, mean, std, flip=flip), 1)
                           for m in models)
                pred = prob.argmax(1).numpy()
                key = name + (" flip" if flip else "")
                row[key] = {"accuracy": float(accuracy_score(y[split[s]], pred)),
                            "macro_f1": float(f1_score(y[split[s]], pred, average="macro"))}
        return row

    rows = {p: score([m]) for p, (m, _) in zip(args.ckpt, members)}
    rows["soup"] = score([soup])
    # not shippable (k times the cost): shows how much the members differ at all
    rows[f"ensemble of the {len(members)} (probability mean)"] = score([m for m, _ in members])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": ck0["config"], "classes": classes, "mean": mean, "std": std,
                "epochs": ck0.get("epochs"), "epoch": ck0.get("epoch"),
                "model": soup.state_dict(), "soup_of": list(args.ckpt),
                "history": ck0.get("history", [])}, out)
    rep = {"command": cmd, "members": args.ckpt, "bn_images": len(bn_idx), "scores": rows,
           "torch": torch.__version__, "cpu_s": time.process_time() - t_cpu}
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    (res / "soup.json").write_text(json.dumps(rep, indent=2) + "\n")
    cols = ["PublicTest", "PublicTest flip", "PrivateTest", "PrivateTest flip"]
    lines = ["# Weight averaging of CNN checkpoints (model soup)", "",
             (f"Produced by `{cmd}` (torch {torch.__version__}). Accuracy in %; PublicTest "
             "selects, PrivateTest reports."), "",
             "| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * row[c]['accuracy']:.2f}"
                                                  for c in cols) + " |")
    (res / "soup.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
