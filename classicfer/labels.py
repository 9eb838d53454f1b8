"""One label vocabulary for every dataset.

Canonical names are the FER-2013 names plus ``contempt``. Every loader maps its
own names or ids onto them with the tables below.
"""

from __future__ import annotations

from .exceptions import DataError

#: Canonical emotion names, in the order used for class indices everywhere.
EMOTIONS: tuple[str, ...] = (
    "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt",
)

#: Synonyms seen in dataset folder names and annotation files.
SYNONYMS: dict[str, str] = {
    "anger": "angry", "angry": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "neutral": "neutral",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "contempt": "contempt",
}

#: FER-2013 CSV ``emotion`` column (0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral).
FER2013_IDS: dict[int, str] = {
    0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral",
}

#: AffectNet ``expression`` ids (0=Neutral ... 7=Contempt; 8-10 are none/uncertain/no-face).
AFFECTNET_IDS: dict[int, str] = {
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry",
    7: "contempt",
}

#: CK+ ``Emotion/*_emotion.txt`` codes (0=neutral 1=anger 2=contempt 3=disgust 4=fear 5=happy
#: 6=sadness 7=surprise).
CKPLUS_IDS: dict[int, str] = {
    0: "neutral", 1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad",
    7: "surprise",
}

#: JAFFE file-name codes, e.g. ``KA.AN1.39.tiff``.
JAFFE_CODES: dict[str, str] = {
    "AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral",
    "SA": "sad", "SU": "surprise",
}


def canonical_label(name: str) -> str:
    """Return the canonical emotion name for ``name`` (case-insensitive).

    Raises
    ------
    DataError
        If ``name`` is not a known emotion name or synonym.
    """
    key = str(name).strip().lower()
    try:
        return SYNONYMS[key]
    except KeyError:
        raise DataError(
            f"unknown emotion label {name!r}; expected one of {', '.join(EMOTIONS)} "
            f"(or a synonym: {', '.join(sorted(set(SYNONYMS) - set(EMOTIONS)))})"
        ) from None


def label_order(labels) -> list[str]:
    """Canonical names present in ``labels``, in :data:`EMOTIONS` order."""
    present = set(labels)
    return [e for e in EMOTIONS if e in present]
