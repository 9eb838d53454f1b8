"""Calibrate a deployed model, evaluate it with the harness, and write its model card.

Usage (from the project root)::

    python scripts/responsible_card.py [--model classicfer/bundled_models/fer2013-cnn]

Steps, all recorded in ``results/responsible/<model>/``:

1. Fit a temperature on FER-2013 PublicTest (the val split; never PrivateTest) with
   :func:`classicfer.evaluation.calibration.calibrate_model_dir`; it writes only
   ``temperature`` and a ``calibration`` record into ``model.json`` (the ONNX file
   and its sha256 are untouched). ``--skip-calibration`` keeps the stored T.
2. Measure NLL, ECE and Brier score on PrivateTest (test) at T = 1 and at the fitted
   T, with reliability diagrams for both (``calibration_test.json``,
   ``reliability_T1.png``, ``reliability_fitted.png``). The test split is used only
   to report, never to fit.
3. Run the evaluation harness: ``classicfer evaluate --data FER2013 --model MODEL``
   (official protocol) and ``--protocol cross-dataset --test-data CK+48
   --shared-classes`` (reports under ``results/<dataset>/<protocol>/<model>/``).
4. Write ``MODEL/model_card.md`` from the sidecar and those reports.

``run.json`` next to the figures holds the command, versions, seed and git commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from classicfer.provenance import git_commit, versions

ROOT = Path(__file__).resolve().parents[1]


#: packages the card's figures depend on (their versions go in run.json)
PACKAGES = ("classicfer", "numpy", "scipy", "onnxruntime", "scikit-learn",
            "opencv-contrib-python-headless")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "classicfer/bundled_models/fer2013-cnn"))
    ap.add_argument("--fer", default=str(ROOT.parent / "shared/datasets/fer2013"))
    ap.add_argument("--ck", default=str(ROOT.parent / "shared/datasets/ckplus48"))
    ap.add_argument("--results", default=str(ROOT / "results"),
                    help="results root (harness reports go to RESULTS/<dataset>/...)")
    ap.add_argument("--skip-calibration", action="store_true")
    ap.add_argument("--skip-harness", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from classicfer.datasets import load_dataset
    from classicfer.evaluation.calibration import (
        _model_scores,
        apply_temperature,
        calibrate_model_dir,
        calibration_summary,
        reliability_diagram,
    )
    from classicfer.export.cards import write_model_card
    from classicfer.runtime._format import read_sidecar

    t0 = time.time()
    model = Path(args.model)
    meta, _ = read_sidecar(model)
    name = meta.get("name") or model.name
    out = Path(args.results) / "responsible" / name
    out.mkdir(parents=True, exist_ok=True)
    fer = load_dataset(args.fer)

    if args.skip_calibration:
        rec = meta.get("calibration") or {"temperature": float(meta.get("temperature", 1.0))}
    else:
        rec = calibrate_model_dir(model, fer, split="val")
    print(f"temperature {rec['temperature']:.4f} ({rec.get('fitted_on', 'stored')})", flush=True)
    meta, _ = read_sidecar(model)
    t = float(meta.get("temperature", 1.0))

    test = fer.split("test")
    labels = list(meta["labels"])
    keep = np.isin(test.labels, labels)
    test = test.subset(keep)
    y = np.array([labels.index(v) for v in test.labels])
    scores = _model_scores(model, test.images)
    p1, pt = apply_temperature(scores, 1.0), apply_temperature(scores, t)
    s1, st = calibration_summary(y, p1), calibration_summary(y, pt)
    reliability_diagram(y, p1, labels, out / "reliability_T1.png",
                        title=f"{name} on FER-2013 PrivateTest, T = 1")
    reliability_diagram(y, pt, labels, out / "reliability_fitted.png",
                        title=f"{name} on FER-2013 PrivateTest, T = {t:.3f} (fitted on val)")
    (out / "calibration_test.json").write_text(json.dumps(
        {"model": name, "sha256": meta["onnx"]["sha256"], "split": "fer2013:test (PrivateTest)",
         "temperature": t, "fit": rec, "T1": s1, "fitted": st}, indent=2, sort_keys=True) + "\n")
    print(f"PrivateTest: ECE {100 * s1['ece']:.2f} % -> {100 * st['ece']:.2f} %, "
          f"NLL {s1['nll']:.4f} -> {st['nll']:.4f}, accuracy {100 * s1['accuracy']:.2f} %",
          flush=True)

    commands = []
    if not args.skip_harness:
        exe = str(Path(sys.executable).with_name("classicfer"))
        commands = [
            [exe, "evaluate", "--data", args.fer, "--model", str(model), "--out", args.results,
             "--seed", str(args.seed), "--quiet"],
            [exe, "evaluate", "--protocol", "cross-dataset", "--test-data", args.ck,
             "--model", str(model), "--shared-classes", "--gallery", "0", "--out",
             args.results, "--seed", str(args.seed), "--quiet"],
        ]
        for cmd in commands:
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
        # No gallery of CK+ faces in the repository (CK+ agreement).
        for p in Path(args.results).glob(f"*ckplus48*/*/{name}/misclassified.png"):
            p.unlink()

    card = write_model_card(model, results_dirs=[args.results])
    print(f"wrote {card}", flush=True)
    (out / "run.json").write_text(json.dumps({
        "command": [sys.executable, *sys.argv],
        "harness_commands": commands,
        "seed": args.seed,
        "model": {"path": str(model), "name": name, "sha256": meta["onnx"]["sha256"]},
        "git_commit": git_commit()["commit"],
        "versions": versions(PACKAGES),
        "seconds": round(time.time() - t0, 1),
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
