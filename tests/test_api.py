"""The facade: ``classicfer.__all__`` names the verbs a user needs, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import classicfer


def test_all_names_exactly_the_facade():
    assert classicfer.__all__ == ["EMOTIONS", "__version__", *sorted(classicfer._FACADE)]


def test_every_facade_name_resolves_to_a_callable():
    for name in classicfer.__all__:
        value = getattr(classicfer, name)
        if name not in ("EMOTIONS", "__version__"):
            assert callable(value), name


def test_facade_names_are_the_subpackages_objects():
    from classicfer.datasets import load_dataset
    from classicfer.evaluation import evaluate
    from classicfer.runtime import load_model, predict

    assert classicfer.load_dataset is load_dataset
    assert classicfer.evaluate is evaluate
    assert classicfer.load_model is load_model and classicfer.predict is predict


def test_import_stays_light():
    code = ("import sys, classicfer; heavy = [m for m in ('onnxruntime', 'torch', 'cv2', "
            "'sklearn', 'dlib') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == ""


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        classicfer.nope  # noqa: B018


def test_shipped_models_label_the_bundled_photo_happy():
    """Golden labels: the bundled models on the bundled astronaut photo."""
    from pathlib import Path

    photo = str(Path(classicfer.__file__).parent / "data" / "astronaut.jpg")
    assert classicfer.load_model().name == "ferplus-cnn"
    for model in (None, "fer2013-cnn"):
        faces = classicfer.predict(photo, model=model)
        assert len(faces) == 1
        assert faces[0].label == "happy" and faces[0].confidence > 0.8, model
