"""Train the FER-2013 CNN head and record the run in results/cnn/.

Usage (from the project root):
    python scripts/train_cnn.py --epochs 24 [--resume] [--limit N]

The training runs of the shipped model (``benchmarks/reproduce.sh``) use it because it
has what ``classicfer train-cnn`` does not: ``--warmup``, ``--grow`` (a network grown by
a stage from a smaller checkpoint), ``--ckpt`` and the ``results/cnn/`` records.

Fits on Training, selects the epoch on PublicTest (val), reports PrivateTest (test)
once at the end. The resumable state lives in ``--ckpt`` (default checkpoints/fer2013-cnn/,
gitignored); the log (``train_log.txt``), the command and CPU time (``commands.txt``) and
the run's ``summary.json`` go to ``--results``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/fer2013"))
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-attention", action="store_true")
    ap.add_argument("--widths", default="16,32,64,128")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (timing)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-from", default=None,
                    help="start from this checkpoint's weights with a fresh schedule "
                         "(a warm restart, a continuation, or the start of --swa)")
    ap.add_argument("--grow", action="store_true",
                    help="with --init-from: build the model from --widths/--no-attention and "
                         "copy the checkpoint's layers that fit (a network grown by a stage)")
    ap.add_argument("--swa", action="store_true",
                    help="stochastic weight averaging: one cosine cycle per epoch from --lr "
                         "to --lr/100, the epoch-end weights averaged (BN recomputed); the "
                         "average is validated and kept (use with --init-from)")
    ap.add_argument("--teacher", action="append", default=[], metavar="CKPT",
                    help="knowledge distillation from this checkpoint (repeat for an ensemble: "
                         "their flip-averaged logits are averaged) on the training images")
    ap.add_argument("--distill", type=float, default=0.5,
                    help="with --teacher: weight of the distillation term (0-1)")
    ap.add_argument("--distill-t", type=float, default=2.0, help="distillation temperature")
    ap.add_argument("--warmup", type=float, default=0.15, help="warm-up fraction of the schedule")
    ap.add_argument("--report-only", action="store_true",
                    help="no training: write the summary of the run in --ckpt as it stands "
                         "(its best.pt and history.jsonl), e.g. of a run ended early")
    ap.add_argument("--stop-after", type=int, default=None, metavar="N",
                    help="run at most N epochs of the --epochs schedule in this call "
                         "(continue later with --resume)")
    ap.add_argument("--ckpt", default=str(ROOT / "checkpoints/fer2013-cnn"))
    ap.add_argument("--results", default=str(ROOT / "results/cnn"))
    args = ap.parse_args(argv)

    import torch

    from classicfer.cnn_head.train import fit, load_checkpoint, predict_logits, to_tensor
    from classicfer.datasets import load_dataset

    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    logf = open(res / "train_log.txt", "a")  # noqa: SIM115  (open for the whole run)

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    cmd = "python " + " ".join(["scripts/train_cnn.py"]
                               + (argv if argv is not None else sys.argv[1:]))
    log(f"command: {cmd}")
    log(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}")
    t_wall, t_cpu = time.time(), time.process_time()
    ds = load_dataset(args.data)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])
    tr, va, te = (ds.splits == s for s in ("train", "val", "test"))
    tr_idx = np.flatnonzero(tr)
    if args.limit:
        tr_idx = np.random.default_rng(args.seed).permutation(tr_idx)[:args.limit]
    log(f"data: {args.data}: {len(tr_idx)} train, {va.sum()} val (PublicTest), "
        f"{te.sum()} test (PrivateTest); classes {classes}")
    init_state, norm = None, None
    model_config = {"attention": not args.no_attention,
                    "widths": tuple(int(w) for w in args.widths.split(","))}
    if args.init_from and not args.report_only:
        _, ck = load_checkpoint(args.init_from)
        init_state, norm = ck["model"], (ck["mean"], ck["std"])
        if not args.grow:
            model_config = {k: v for k, v in ck["config"].items() if k != "n_classes"}
        done = ck["epoch"] + (1 if "optimizer" in ck else 0)
        log(f"init from {args.init_from}: {done} epochs done "
            f"of a {ck['epochs']}-epoch schedule; config {model_config}")
    extra, teacher = {}, {}
    if not args.report_only:  # converted once, for the teachers and for fit
        x_tr, x_va = to_tensor(ds.images[tr_idx]), to_tensor(ds.images[va])
        if args.teacher:
            teacher = {"teacher_logits": teacher_logits(args.teacher, x_tr, x_va, y[va], log),
                       "distill": args.distill, "distill_temperature": args.distill_t}
    if args.report_only:
        best, ck = load_checkpoint(Path(args.ckpt) / "best.pt")
        hist = [json.loads(line) for line in
                (Path(args.ckpt) / "history.jsonl").read_text().splitlines() if line.strip()]
        out = {"model": best, "best_epoch": ck["epoch"], "best_val_acc": ck["val_acc"],
               "history": hist, "mean": ck["mean"], "std": ck["std"], "config": ck["config"]}
        log(f"report only: {args.ckpt}: best epoch {ck['epoch']} of {len(hist)} run")
        trained = [ln.split("command: ", 1)[1].strip() for ln in
                   (res / "train_log.txt").read_text().splitlines()
                   if "command: " in ln and "--report-only" not in ln and args.ckpt in ln]
        if trained:  # the summary names the training command; this one is kept beside it
            extra, cmd = {"report_command": cmd}, trained[0]
    else:
        out = fit(x_tr, y[tr_idx], x_va, y[va], classes=classes,
                  epochs=args.epochs, out_dir=args.ckpt, batch_size=args.batch_size, lr=args.lr,
                  seed=args.seed, resume=args.resume, stop_after=args.stop_after, log=log,
                  threads=args.threads or None,
                  model_config=model_config, init_state=init_state, norm=norm,
                  warmup=args.warmup, grow=args.grow, swa=args.swa, **teacher)
    model = out["model"]
    from _metrics import f1_record

    xt = to_tensor(ds.images[te])
    summary = {"command": cmd, **extra,
                   "epochs": args.epochs, "best_epoch": out["best_epoch"],
                   "val_acc": out["best_val_acc"], "seed": args.seed, "classes": classes,
                   "mean": out["mean"], "std": out["std"], "config": out["config"],
                   "torch": torch.__version__, "numpy": np.__version__,
                   "cpu_s_this_process": time.process_time() - t_cpu,
                   "wall_s_this_process": time.time() - t_wall,
                   "cpu_s_all_epochs": sum(r["cpu_s"] for r in out["history"]),
                   "wall_s_all_epochs": sum(r["wall_s"] for r in out["history"])}
    for flip in (False, True):
        pred = predict_logits(model, xt, out["mean"], out["std"], flip=flip).argmax(1).numpy()
        key = "test_flip" if flip else "test"
        summary[key] = f1_record(y[te], pred, classes)
        log(f"PrivateTest{' (flip TTA)' if flip else ''}: acc {summary[key]['accuracy']:.4f} "
            f"macro-F1 {summary[key]['macro_f1']:.4f}")
    with open(res / "commands.txt", "a") as f:
        f.write(f"{cmd}\n  epochs run: {len(out['history'])}, "
                f"CPU {summary['cpu_s_all_epochs']:.0f} s, "
                f"wall {summary['wall_s_all_epochs']:.0f} s, best epoch {out['best_epoch']}, "
                f"PublicTest {out['best_val_acc']:.4f}, PrivateTest "
                f"{summary['test']['accuracy']:.4f}\n")
    (res / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"total: {summary['cpu_s_all_epochs']:.0f} s CPU over {len(out['history'])} epochs "
        f"(resumed parts included), best epoch {out['best_epoch']} "
        f"(PublicTest acc {out['best_val_acc']:.4f})")


def teacher_logits(paths, xt, xv, y_val, log):
    """Mean flip-averaged logits of the teacher checkpoints on the training images.

    ``xt``, ``xv``: (N, 1, H, W) float tensors of the Training and PublicTest crops.

    Logs each teacher's and the ensemble's PublicTest accuracy (what the student is
    distilled towards).
    """
    from classicfer.cnn_head.train import ensemble_logits

    def each(path, logits):
        acc = (logits[1].argmax(1).numpy() == y_val).mean()
        log(f"teacher {path}: PublicTest acc (flip) {acc:.4f}")

    lt, lv = ensemble_logits(paths, xt, xv, each=each)
    log(f"teacher ensemble of {len(paths)}: PublicTest acc (flip) "
        f"{(lv.argmax(1).numpy() == y_val).mean():.4f}")
    return lt


if __name__ == "__main__":
    main()
