"""README.md's results block (benchmarks/readme_results.py): one row per model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "readme_results.py"


@pytest.fixture()
def readme_results():
    spec = importlib.util.spec_from_file_location("readme_results", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _report(results: Path, name: str, seed: int, accuracy: float, macro_f1: float,
            folds=(0.5, 1.0)):
    folder = results / "ck" / "subject-kfold" / name
    folder.mkdir(parents=True)
    m = {"dataset": "ck", "protocol": "subject-kfold", "model": name, "seed": seed,
         "accuracy": accuracy, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.05],
         "macro_f1": macro_f1, "n_folds": len(folds),
         "mean_test_accuracy": sum(folds) / len(folds), "std_test_accuracy": 0.25,
         "folds": [{"fold": i, "test_accuracy": a} for i, a in enumerate(folds)]}
    (folder / "metrics.json").write_text(json.dumps(m))


def _rows(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("| ") and f"[{name}]" in ln]


def test_fold_seed_reruns_make_one_row_with_mean_and_sd(tmp_path, readme_results):
    results = tmp_path / "results"
    _report(results, "cnn", 0, 0.90, 0.80)
    _report(results, "cnn_fs1", 1, 0.80, 0.70)
    _report(results, "cnn_fs2", 2, 0.85, 0.75)
    _report(results, "svm", 0, 0.86, 0.76)
    _report(results, "odd_fs7", 0, 0.50, 0.40)  # named like a rerun, but seed 0: its own row
    text = readme_results.render(results)

    (cnn,) = _rows(text, "cnn")
    assert "(3 fold seeds)" in cnn
    assert "| 85.0 ± 5.0 |" in cnn and "| 75.0 ± 5.0 |" in cnn
    assert "range 80.0–90.0" in cnn
    assert "results/ck/subject-kfold/cnn/" in cnn  # links to the seed-0 report
    assert not _rows(text, "cnn_fs1") and not _rows(text, "cnn_fs2")
    (svm,) = _rows(text, "svm")
    assert "| 86.0 | 81.0–91.0 |" in svm
    assert len(_rows(text, "odd_fs7")) == 1
    table = [ln for ln in text.splitlines() if ln.startswith("| ck /")]
    assert [ln.split("[")[1].split("]")[0] for ln in table] == ["svm", "cnn", "odd_fs7"]
    assert "cnn 90.0, 80.0, 85.0 (seeds 0, 1, 2)" in text


def test_check_fails_when_readme_is_stale_and_passes_after_writing(tmp_path, monkeypatch,
                                                                    readme_results):
    _report(tmp_path / "results", "svm", 0, 0.86, 0.76)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nrest\n")
    monkeypatch.setattr(readme_results, "ROOT", tmp_path)
    with pytest.raises(SystemExit) as stale:
        readme_results.main(["--check"])
    assert "out of date" in str(stale.value.code)
    readme_results.main([])
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("<!-- results:end -->\nrest\n")
    assert _rows(text, "svm")
    with pytest.raises(SystemExit) as fresh:
        readme_results.main(["--check"])
    assert fresh.value.code == 0


def _arch_row(text: str, name: str) -> list[str]:
    return [c.strip() for c in next(ln for ln in text.splitlines()
                                    if ln.startswith(f"| {name} |")).split("|")[2:-1]]


def test_architecture_rows_show_each_column_from_the_benchmark_files(tmp_path, readme_results):
    folder = tmp_path / "results" / "architectures"
    folder.mkdir(parents=True)
    cell = {"accuracy": 0.5, "n": 10, "n_unscorable": 0, "recall": {}}
    mat = {"vgg-48": {"fer2013": {**cell, "accuracy": 0.571}, "ferplus": {**cell, "accuracy": 0.81},
                      "ckplus48-6": {**cell, "accuracy": 0.511}},
           "dlib-embedding": {"ferplus": {**cell, "accuracy": 0.6}}}
    base = {"parameters": None, "onnx_mb": 0.05, "latency_ms_p50": 21.0, "epochs": None,
            "train_cpu_s": None}
    facts = {"vgg-48": {**base, "parameters": 1201492, "onnx_mb": 4.81, "latency_ms_p50": 0.82,
                        "epochs": 8, "train_cpu_s": 615.4,
                        "ckplus_finetune": {"accuracy": 0.9234}},
             "dlib-embedding": {**base, "external_mb": 22.46}}
    rob = {"vgg-48": {"ferplus": {"mean_s3": 0.698, "relative_s3": 0.862}}}
    for name, key, value in (("matrix", "matrix", mat), ("models", "models", facts),
                             ("robustness", "robustness", rob)):
        (folder / f"{name}.json").write_text(json.dumps({key: value}))
    text = readme_results.render(tmp_path / "results")
    assert _arch_row(text, "vgg-48") == ["1,201,492", "4.81", "0.82", "57.1", "81.0", "51.1",
                                         "92.3", "69.8 (86.2 %)", "8", "615"]
    assert _arch_row(text, "dlib-embedding") == ["", "0.05 (+22.5 dlib)", "21.00", "", "60.0",
                                                 "", "", "", "", ""]
