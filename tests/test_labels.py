import pytest

from classicfer.exceptions import ClassicferError, DataError
from classicfer.labels import (
    AFFECTNET_IDS,
    CKPLUS_IDS,
    EMOTIONS,
    FER2013_IDS,
    JAFFE_CODES,
    SYNONYMS,
    canonical_label,
    label_order,
)


@pytest.mark.parametrize("name, expected", [
    ("anger", "angry"), ("Angry", "angry"), (" sadness ", "sad"), ("HAPPINESS", "happy"),
    ("surprised", "surprise"), ("contempt", "contempt"), ("fearful", "fear"),
    ("neutral", "neutral"), ("disgusted", "disgust"),
])
def test_canonical_label_synonyms(name, expected):
    assert canonical_label(name) == expected


def test_canonical_label_unknown_is_one_line_data_error():
    with pytest.raises(DataError, match="unknown emotion label 'bored'; expected one of angry"):
        canonical_label("bored")
    with pytest.raises(ClassicferError) as info:
        canonical_label("")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("table", [FER2013_IDS, AFFECTNET_IDS, CKPLUS_IDS, JAFFE_CODES, SYNONYMS])
def test_tables_map_into_the_vocabulary(table):
    assert set(table.values()) <= set(EMOTIONS)


def test_id_tables_follow_the_published_orders():
    # FER-2013: 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral
    assert [FER2013_IDS[i] for i in range(7)] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    # CK+: 0=neutral 1=anger 2=contempt 3=disgust 4=fear 5=happy 6=sadness 7=surprise
    assert [CKPLUS_IDS[i] for i in range(8)] == [
        "neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]
    # AffectNet: 0=Neutral 1=Happy 2=Sad 3=Surprise 4=Fear 5=Disgust 6=Anger 7=Contempt
    assert [AFFECTNET_IDS[i] for i in range(8)] == [
        "neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"]
    assert len(set(JAFFE_CODES.values())) == 7


def test_label_order_is_canonical_and_only_present_labels():
    assert label_order(["sad", "angry", "sad", "contempt"]) == ["angry", "sad", "contempt"]
    assert label_order([]) == []
