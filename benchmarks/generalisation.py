r"""Cross-dataset matrix and robustness suite for deployed models (ONNX + sidecar).

For each model (``--model NAME=PATH``; a folder or a bundled name) and each test set:

* ``fer2013``: FER-2013 PrivateTest with its original labels (7 classes);
* ``ferplus``: FER+ test, majority labels (3,137 images, 8 classes);
* ``ckplus48``: CK+48, all 981 images (7 classes, contempt included);
* ``ckplus48-6``: CK+48 without contempt (927 images, the six classes FER-2013 shares).

Every image of the test set is scored and the model's prediction is never restricted: an
image of a class the model cannot output (contempt for a FER-2013 model) is an error and
``n_unscorable`` says how many there were; a prediction of a class the data lacks (neutral
on CK+48, contempt on ckplus48-6) is an error too. With ``--split val`` the FER-2013 and
FER+ columns use PublicTest / FER+ val instead (selection) and CK+48 is left out.

``--robustness`` adds the suite of :mod:`classicfer.evaluation.corruptions` (every family x
severity 1-5, seeded) on FER+ and CK+48 (FER+ only with ``--split val``).

Writes to ``--out``: ``matrix.json``/``.md``/``.png``, ``models.json``/``.md`` (parameters, ONNX
size, single-thread latency, training epochs and CPU time beside the accuracy columns) and
``robustness.json``/``.md``,
``robustness_severity.png``, ``corruption_examples.png``, each JSON with the command,
versions, git commit and seed.

Example::

    python benchmarks/generalisation.py --model fer2013-cnn=fer2013-cnn \
        --model ferplus-cnn=ferplus-cnn --robustness --out results/generalisation
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = "../shared/datasets"
SETS = ("fer2013", "ferplus", "ckplus48", "ckplus48-6")
TITLES = {"fer2013": "FER-2013 PrivateTest (FER labels)", "ferplus": "FER+ test (majority)",
          "ckplus48": "CK+48 all (7 classes)", "ckplus48-6": "CK+48 six shared classes"}


def test_sets(root: str, split: str) -> dict:
    """Name -> (images, labels) of every test set (val splits with ``split='val'``)."""
    from classicfer.datasets import load_dataset

    out = {}
    fer = load_dataset(f"{root}/fer2013")
    out["fer2013"] = fer.split(split)
    out["ferplus"] = load_dataset(f"{root}/ferplus", "ferplus").split(split)
    if split == "test":
        ck = load_dataset(f"{root}/ckplus48")
        out["ckplus48"] = ck
        out["ckplus48-6"] = ck.subset(ck.labels != "contempt")
    return {k: (np.asarray(v.images), np.asarray(v.labels)) for k, v in out.items()}


def score(model, images, labels) -> dict:
    """Accuracy over every image, per-class recall, n and n_unscorable (no prediction dropped)."""
    from classicfer.evaluation import classification_metrics

    proba = model.predict_proba(images)  # DeployedModel runs the graph in batches itself
    pred = np.asarray(model.labels)[proba.argmax(axis=1)]
    classes = [c for c in model.labels if c in set(labels)] + \
        sorted(set(labels) - set(model.labels))
    m = classification_metrics(labels, pred, classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "balanced_accuracy": m["balanced_accuracy"], "n": len(labels),
            "n_unscorable": int(np.sum(~np.isin(labels, model.labels))),
            "recall": {c: v["recall"] for c, v in m["per_class"].items()}}


def robustness(model, images, labels, seed: int) -> dict:
    from classicfer.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

    clean = score(model, images, labels)["accuracy"]
    table = {name: [score(model, corrupt(images, name, s, seed=seed), labels)["accuracy"]
                    for s in SEVERITIES] for name in CORRUPTIONS}
    mean = [float(np.mean([table[n][s - 1] for n in CORRUPTIONS])) for s in SEVERITIES]
    return {"clean": clean, "accuracy": table, "mean_by_severity": mean,
            "mean_s3": mean[2], "relative_s3": mean[2] / clean if clean else None}


def model_facts(model, images) -> dict:
    """Parameters, ONNX size, single-thread latency per face and training cost of ``model``.

    ``external_mb``: weights the model loads besides its ONNX graph (dlib's networks for a
    classical model with ``embedding`` or ``landmarks`` features).
    """
    import time

    sidecar = model.sidecar
    training = sidecar.get("training") or {}
    onnx = model.path / (sidecar.get("onnx") or {}).get("file", "model.onnx")
    face = images[:1]
    for _ in range(30):
        model.predict_proba(face)
    times = []
    for _ in range(300):
        t0 = time.perf_counter()
        model.predict_proba(face)
        times.append(time.perf_counter() - t0)
    history = training.get("history") or []
    return {"kind": model.kind, "labels": len(model.labels),
            "arch": (training.get("architecture") or {}).get("arch"),
            "input": list(model.input_size), "parameters": training.get("parameters"),
            "onnx_mb": onnx.stat().st_size / 1e6, "external_mb": _external_mb(model),
            "quantization": bool(sidecar.get("quantization")),
            "test_time": sidecar.get("test_time"),
            "latency_ms_p50": 1000 * float(np.median(times)),
            "epochs": len(history) or training.get("epochs"),
            "train_cpu_s": (sum(h.get("cpu_s", 0) for h in history) if history
                            else training.get("cpu_s"))}


#: dlib weight files a classical feature loads at run time.
DLIB_FILES = {"embedding": ("dlib_face_recognition_resnet_model_v1.dat",),
              "landmarks": ("shape_predictor_68_face_landmarks.dat",)}


def _external_mb(model) -> float:
    if model.kind != "classical":
        return 0.0
    from classicfer.features._dlib import model_path

    names = {f for part in model.feature_spec.split("+") for f in DLIB_FILES.get(part, ())}
    return sum(Path(model_path(n)).stat().st_size for n in names) / 1e6


def _size_cell(f: dict) -> str:
    extra = f.get("external_mb") or 0
    return f"{f['onnx_mb']:.2f}" + (f" (+{extra:.1f} dlib)" if extra else "")


def _finetune_cell(f: dict) -> str:
    ft = f.get("ckplus_finetune")
    return _pct(ft["accuracy"]) if ft else ""


#: What the columns of the models table mean (models.md and README's Architectures table).
FACTS_NOTE = (
    "Latency: onnxruntime, one thread, one face (batch 1), median of 300 runs (feature "
    "extraction included for a classical model); ONNX MB: the graph file (+ dlib weights a "
    "classical model loads); training CPU: the epochs of this model's own run, not of the "
    "checkpoint it started from. FER-2013: PrivateTest, FER labels; FER+: test, majority "
    "labels; CK+48 (6): cross-dataset, six shared classes, the model as trained; CK+48 "
    "fine-tuned: 7 classes, subject-grouped 10-fold through the evaluation harness, each "
    "fold fine-tuned from this model's checkpoint; robustness s3: mean accuracy over every "
    "corruption at severity 3 on FER+ test (% of clean).")


def facts_table(facts: dict, mat: dict, rob: dict) -> list[str]:
    """The models table: one row per model, in ``facts`` order."""
    lines = [("| model | params | ONNX MB | ms/face | FER-2013 | FER+ | CK+48 (6) "
              "| CK+48 fine-tuned | robustness s3 | epochs | train CPU s |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, f in facts.items():
        row = mat.get(name, {})
        r = rob.get(name, {}).get("ferplus")
        cells = [f"{f['parameters']:,}" if f["parameters"] else "", _size_cell(f),
                 f"{f['latency_ms_p50']:.2f}"]
        cells += [_pct(row[k]["accuracy"]) if k in row else "" for k in
                  ("fer2013", "ferplus", "ckplus48-6")]
        cells += [_finetune_cell(f),
                  f"{_pct(r['mean_s3'])} ({_pct(r['relative_s3'])} %)" if r else "",
                  str(f["epochs"] or ""),
                  f"{f['train_cpu_s']:.0f}" if f["train_cpu_s"] else ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def facts_markdown(facts: dict, mat: dict, rob: dict) -> str:
    return "\n".join(["# Models compared", "", FACTS_NOTE, ""]
                     + facts_table(facts, mat, rob)) + "\n"


def provenance(seed) -> dict:
    from classicfer.provenance import git_commit, versions

    return {"command": ["python", *sys.argv], "versions": versions(), "git": git_commit(),
            "seed": seed}


def _pct(x):
    return "" if x is None else f"{100 * x:.1f}"


VAL_TITLES = {"fer2013": "FER-2013 PublicTest (FER labels)", "ferplus": "FER+ val (majority)"}


def matrix_markdown(mat: dict, split: str) -> str:
    titles = dict(TITLES, **(VAL_TITLES if split == "val" else {}))
    sets = [s for s in SETS if any(s in v for v in mat.values())]
    lines = [f"# Cross-dataset matrix ({split} splits)", "",
             ("Accuracy in % over every image of the test set; an image of a class the model "
             "cannot output counts as an error (n_unscorable of n)."), "",
             "| model | " + " | ".join(titles[s] for s in sets) + " |",
             "|---|" + "---:|" * len(sets)]
    for name, row in mat.items():
        cells = [f"{_pct(row[s]['accuracy'])} (n={row[s]['n']}, "
                 f"{row[s]['n_unscorable']} unscorable)" for s in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for s in sets[1:]:
        classes = sorted({c for row in mat.values() for c in row[s]["recall"]})
        lines += ["", f"Per-class recall, {titles[s]}:", "",
                  "| model | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
        for name, row in mat.items():
            lines.append(f"| {name} | " + " | ".join(
                _pct(row[s]["recall"].get(c)) for c in classes) + " |")
    return "\n".join(lines) + "\n"


def robustness_markdown(rob: dict) -> str:
    from classicfer.evaluation.corruptions import CORRUPTIONS

    lines = ["# Robustness suite", "",
             ("Accuracy in % per corruption x severity (1-5), seeded; the mean over all "
             "corruptions at each severity and, at severity 3, relative to clean."), ""]
    for name, per in rob.items():
        for ds, r in per.items():
            lines += [f"## {name} on {TITLES.get(ds, ds)}", "",
                      (f"clean {_pct(r['clean'])} %, mean at severity 3 {_pct(r['mean_s3'])} % "
                      f"= {_pct(r['relative_s3'])} % of clean"), "",
                      "| corruption | 1 | 2 | 3 | 4 | 5 |", "|---|---:|---:|---:|---:|---:|"]
            for c in CORRUPTIONS:
                lines.append(f"| {c} | " + " | ".join(_pct(a) for a in r["accuracy"][c]) + " |")
            lines.append("| **mean** | " + " | ".join(
                f"**{_pct(a)}**" for a in r["mean_by_severity"]) + " |")
            lines.append("")
    return "\n".join(lines)


def plot_matrix(mat: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in SETS if any(s in v for v in mat.values())]
    import textwrap

    a = np.array([[100 * mat[m][s]["accuracy"] for s in sets] for m in mat])
    fig, ax = plt.subplots(figsize=(1.9 * len(sets) + 3, 0.45 * len(mat) + 1.8))
    im = ax.imshow(a, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(sets)), [textwrap.fill(TITLES[s], 16) for s in sets], fontsize=8)
    ax.set_yticks(range(len(mat)), list(mat), fontsize=8)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ax.text(j, i, f"{a[i, j]:.1f}", ha="center", va="center",
                    color="white" if a[i, j] < 60 else "black", fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy %")
    ax.set_title("Train set (model) x test set: accuracy over every image")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_severity(rob: dict, path: Path) -> None:
    """Accuracy against severity: every corruption of each model x test set (two models or
    fewer), else the mean curve of every model, one panel per test set.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classicfer.evaluation.corruptions import CORRUPTIONS

    detail = len(rob) <= 2
    cells = ([(m, d) for m, per in rob.items() for d in per] if detail else
             [(None, d) for d in dict.fromkeys(d for per in rob.values() for d in per)])
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4.2), squeeze=False)
    for ax, (m, d) in zip(axes[0], cells, strict=True):
        curves = ([(c, rob[m][d]["accuracy"][c], 1) for c in CORRUPTIONS]
                  + [("mean", rob[m][d]["mean_by_severity"], 3)] if detail else
                  [(n, per[d]["mean_by_severity"], 2) for n, per in rob.items() if d in per])
        clean = {n: per[d]["clean"] for n, per in rob.items() if d in per}
        for label, acc, lw in curves:
            ax.plot(range(6), [100 * clean[m if detail else label]] + [100 * a for a in acc],
                    marker=".", lw=lw, label=label, color="black" if label == "mean" else None)
        ax.set(title=f"{m} on {d}" if detail else f"mean over corruptions, {d}",
               xlabel="severity (0 = clean)", ylabel="accuracy %", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_examples(images, path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from classicfer.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

    face = images[:1]
    fig, axes = plt.subplots(len(CORRUPTIONS), 6, figsize=(6 * 1.1, len(CORRUPTIONS) * 1.15))
    for i, c in enumerate(CORRUPTIONS):
        axes[i][0].imshow(face[0], cmap="gray", vmin=0, vmax=255)
        axes[i][0].set_ylabel(c, rotation=0, ha="right", va="center", fontsize=7)
        for s in SEVERITIES:
            axes[i][s].imshow(corrupt(face, c, s, seed=seed)[0], cmap="gray", vmin=0, vmax=255)
            if i == 0:
                axes[i][s].set_title(f"severity {s}", fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_title("clean", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--data-root", default=ROOT)
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--robustness", action="store_true")
    ap.add_argument("--robustness-for", action="append", default=None, metavar="NAME",
                    help="run the robustness suite only for these models (repeatable; "
                         "default: every model)")
    ap.add_argument("--update", action="store_true",
                    help="keep the other models already in --out and add or replace these")
    ap.add_argument("--latency-only", action="store_true",
                    help="with --update: measure parameters, size and latency of these "
                         "models again (an idle machine) and keep their accuracy figures")
    ap.add_argument("--finetune", action="append", default=[], metavar="NAME=REPORT",
                    help="a subject-grouped CK+48 fine-tuning report folder of model NAME "
                         "(its metrics.json), shown as the table's fine-tuned column")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/generalisation")
    args = ap.parse_args(argv)
    if args.latency_only and not args.update:
        ap.error("--latency-only needs --update")

    from classicfer.runtime import load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = provenance(args.seed)
    old = _previous(out) if args.update else {"matrix": {}, "models": {}, "robustness": {}}
    models = {}
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = (path or name, load_model(path or name, threads=1))
    sets = test_sets(args.data_root, "val" if args.latency_only else args.split)
    mat = dict(old["matrix"])
    if not args.latency_only:
        mat.update(_score_all(models, sets))
    facts = dict(old["models"])
    for n, (path, m) in models.items():
        facts[n] = {**model_facts(m, sets["ferplus"][0]), "path": path,
                    "command": meta["command"],
                    "ckplus_finetune": (facts.get(n) or {}).get("ckplus_finetune")}
    for item in args.finetune:
        name, _, report = item.partition("=")
        facts[name]["ckplus_finetune"] = finetune_record(Path(report))
    rob = dict(old["robustness"])
    if args.robustness and not args.latency_only:
        rob.update(run_robustness({n: m for n, (_, m) in models.items()}, sets, args))
    write_all(out, meta, args.split, mat, facts, rob, sets)


def _previous(out: Path) -> dict:
    """The matrix, facts and robustness figures already in ``out`` (empty where absent)."""
    def read(name, key):
        f = out / name
        return json.loads(f.read_text())[key] if f.is_file() else {}

    return {"matrix": read("matrix.json", "matrix"), "models": read("models.json", "models"),
            "robustness": read("robustness.json", "robustness")}


def _score_all(models: dict, sets: dict) -> dict:
    mat = {n: {s: score(m, *sets[s]) for s in sets} for n, (_, m) in models.items()}
    for n, row in mat.items():
        print(n, {s: round(100 * r["accuracy"], 1) for s, r in row.items()}, file=sys.stderr)
    return mat


def finetune_record(report: Path) -> dict:
    """Accuracy, macro-F1, protocol and report folder of a CK+48 fine-tuning report."""
    m = json.loads((report / "metrics.json").read_text())
    return {"accuracy": m["accuracy"], "macro_f1": m.get("macro_f1"),
            "protocol": m.get("protocol"), "report": str(report)}


def write_all(out: Path, meta: dict, split: str, mat: dict, facts: dict, rob: dict,
              sets: dict) -> None:
    """Every JSON, Markdown and PNG file of ``out`` from the merged figures (models by name,
    so an ``-int8`` copy follows its source).
    """
    mat, facts, rob = ({k: d[k] for k in sorted(d)} for d in (mat, facts, rob))
    (out / "matrix.json").write_text(json.dumps({**meta, "split": split, "matrix": mat},
                                                indent=2) + "\n")
    (out / "matrix.md").write_text(matrix_markdown(mat, split))
    plot_matrix(mat, out / "matrix.png")
    if rob:
        (out / "robustness.json").write_text(json.dumps({**meta, "split": split,
                                                         "robustness": rob}, indent=2) + "\n")
        (out / "robustness.md").write_text(robustness_markdown(rob))
        plot_severity(rob, out / "robustness_severity.png")
        plot_examples(sets["ferplus"][0][7:8], out / "corruption_examples.png", meta["seed"])
    (out / "models.json").write_text(json.dumps({**meta, "models": facts}, indent=2) + "\n")
    (out / "models.md").write_text(facts_markdown(facts, mat, rob))


def run_robustness(models: dict, sets: dict, args) -> dict:
    """The robustness figures of ``models`` (those of ``--robustness-for`` if given)."""
    rob_sets = ["ferplus"] + (["ckplus48-6"] if "ckplus48-6" in sets else [])
    rob = {n: {d: robustness(m, *sets[d], args.seed) for d in rob_sets}
           for n, m in models.items() if not args.robustness_for or n in args.robustness_for}
    for n, per in rob.items():
        print(n, {d: (round(100 * r["mean_s3"], 1), round(100 * r["relative_s3"], 1))
                  for d, r in per.items()}, file=sys.stderr)
    return rob


if __name__ == "__main__":
    main()
