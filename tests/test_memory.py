"""Memory stays bounded on large inputs: models are given their rows in bounded slices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from classicfer.datasets import Dataset
from classicfer.evaluation import PrefitClassifier, evaluate
from classicfer.evaluation._harness import PREDICT_BATCH
from classicfer.exceptions import ConfigError
from classicfer.labels import EMOTIONS

LABELS = list(EMOTIONS[:7])
N = 5000


def _crops_dataset(n=N):
    """``n`` 4x4 crops whose first pixel is the index of their label."""
    y = np.arange(n) % len(LABELS)
    images = np.zeros((n, 4, 4), np.uint8)
    images[:, 0, 0] = y
    return Dataset(images=images, labels=np.array(LABELS)[y], subjects=None,
                   splits=np.array(["test"] * n), paths=np.array([f"{i}.png" for i in range(n)]),
                   name="tiny")


class _RecordingModel:
    """A deployed-model stand-in: one-hot on the first pixel; remembers each batch size."""

    labels = LABELS

    def __init__(self):
        self.batches = []

    def predict_proba(self, crops):
        crops = np.asarray(crops)
        self.batches.append(len(crops))
        return np.eye(len(LABELS))[crops[:, 0, 0]]


def test_prefit_model_is_scored_in_bounded_batches():
    ds = _crops_dataset()
    model = _RecordingModel()
    res = evaluate(PrefitClassifier(model), None, "cross-dataset", test_dataset=ds)
    assert max(model.batches) <= PREDICT_BATCH < N
    assert sum(model.batches) == N  # one pass: labels and scores come from the same call
    # slices are put back in order
    assert np.array_equal(res.y_pred, ds.labels[res.rows])
    assert np.array_equal(res.proba, np.eye(len(LABELS))[ds.images[res.rows, 0, 0]])


def test_prefit_estimator_predict_and_scores_are_batched():
    ds = _crops_dataset()
    seen = []

    def flat(X):
        X = np.asarray(X, dtype=float)
        seen.append(len(X))
        return X.reshape(len(X), -1)

    est = make_pipeline(FunctionTransformer(flat), GaussianNB()).fit(ds.images[:70],
                                                                      ds.labels[:70])
    seen.clear()
    res = evaluate(est, None, "cross-dataset", test_dataset=ds)
    assert seen and max(seen) <= PREDICT_BATCH
    assert sum(seen) == 2 * N  # predict, then predict_proba
    assert np.array_equal(res.y_pred, est.predict(ds.images[res.rows]).astype(str))
    assert np.allclose(res.proba, est.predict_proba(ds.images[res.rows]))


class _RecordingSession:
    def __init__(self, session):
        self.session = session
        self.batches = []

    def run(self, names, feeds):
        self.batches.append(len(next(iter(feeds.values()))))
        return self.session.run(names, feeds)


def test_deployed_model_runs_the_graph_in_slices(tmp_path):
    from classicfer.export._testing import make_linear_model
    from classicfer.runtime import load_model

    m = load_model(make_linear_model(tmp_path / "lin", size=8), cache=False)
    crops = np.random.default_rng(0).integers(0, 256, (300, 8, 8), dtype=np.uint8)
    whole = m.predict_proba(crops, batch_size=len(crops))
    rec = m.session = _RecordingSession(m.session)
    p = m.predict_proba(crops)
    assert max(rec.batches) <= m.batch_size < len(crops) and sum(rec.batches) == len(crops)
    assert p.dtype == np.float32 and np.allclose(p, whole, atol=1e-6)
    rec.batches.clear()
    assert np.allclose(m.predict_proba(crops, batch_size=7), whole, atol=1e-6)
    assert max(rec.batches) == 7
    assert m.predict_proba(crops[:0]).shape == (0, len(m.labels))
    with pytest.raises(ConfigError, match="batch_size"):
        m.predict_proba(crops, batch_size=0)
