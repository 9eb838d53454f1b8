"""FER+ loader: both layouts, the FERPlus majority rule, votes on the Dataset, inspect."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from classicfer.datasets import (
    detect_format,
    format_report,
    inspect_dataset,
    load_dataset,
    majority_vote,
    vote_distribution,
)
from classicfer.exceptions import DataError

# votes: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
ROWS = {
    "train": [("fer0000000.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),      # happy, unanimous
              ("fer0000001.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),       # no majority (4 of 9)
              ("fer0000002.png", [1, 0, 0, 0, 6, 1, 1, 0, 1, 0]),       # angry: 6 of 6 once 1s go
              ("fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 0, 7, 3])],      # unknown majority
    "val": [("fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 6, 0, 4])],        # contempt 6 of 10
    "test": [("fer0000005.png", [2, 0, 8, 0, 0, 0, 0, 0, 0, 0]),        # surprise
             ("fer0000006.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0])],       # a tie: no majority
}
FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


def _face(k):
    return np.full((48, 48), 20 + 30 * k, np.uint8)


def make_ferplus(root):
    k = 0
    for split, rows in ROWS.items():
        d = os.path.join(root, FOLDERS[split])
        os.makedirs(d)
        with open(os.path.join(d, "label.csv"), "w") as f:
            for name, votes in rows:
                cv2.imwrite(os.path.join(d, name), _face(k))
                k += 1
                f.write(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)) + "\n")
    return root


def test_majority_rule_follows_ferplus():
    votes = [v for rows in ROWS.values() for _, v in rows]
    # happy=1, none, angry=4, none (unknown), contempt=7, surprise=2, none (tie)
    assert majority_vote(votes).tolist() == [1, -1, 4, -1, 7, 2, -1]


def test_vote_distribution_rows_sum_to_one_without_unknown():
    d = vote_distribution([[4, 0, 0, 1, 3, 2, 0, 0, 5, 5]], ("neutral", "sad", "angry",
                                                             "disgust"))
    assert np.allclose(d, [[0.4, 0.1, 0.3, 0.2]])


def test_folder_layout(tmp_path):
    root = make_ferplus(str(tmp_path / "ferplus"))
    assert detect_format(root) == "ferplus"
    ds = load_dataset(root, cache=False)
    assert ds.format == "ferplus" and ds.votes.shape == (4, 10)
    assert ds.labels.tolist() == ["happy", "angry", "contempt", "surprise"]
    assert ds.splits.tolist() == ["train", "train", "val", "test"]
    assert ds.classes[-1] == "contempt"
    assert len(ds.skipped) == 3 and all("no majority" in r for _, r in ds.skipped)
    sub = ds.split("train")
    assert sub.votes.shape == (2, 10) and sub.votes[1, 4] == 6


def test_votes_survive_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSICFER_CACHE", str(tmp_path / "cache"))
    root = make_ferplus(str(tmp_path / "ferplus"))
    first = load_dataset(root)
    again = load_dataset(root)
    assert again.votes is not None and (again.votes == first.votes).all()


def test_csv_pair_joined_by_row(tmp_path):
    root = tmp_path / "csvs"
    root.mkdir()
    fer_rows, new_rows = [], []
    usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    k = 0
    for split, rows in ROWS.items():
        for name, votes in rows:
            fer_rows.append(f"0,{' '.join(map(str, _face(k).ravel()))},{usage[split]}")
            new_rows.append(f"{usage[split]},{name}," + ",".join(map(str, votes)))
            k += 1
    fer_rows.append(f"3,{' '.join(['7'] * 2304)},Training")   # voted not a face: no name
    new_rows.append("Training,," + ",".join(["0"] * 9 + ["10"]))
    (root / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "\n".join(fer_rows) + "\n")
    (root / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
        "unknown,NF\n" + "\n".join(new_rows) + "\n")
    ds = load_dataset(str(root / "fer2013new.csv"), cache=False)
    assert ds.format == "ferplus"
    assert ds.labels.tolist() == ["happy", "angry", "contempt", "surprise"]
    assert int(ds.images[1].mean()) == 20 + 30 * 2   # row 3 of fer2013.csv
    assert len(ds.skipped) == 4


def test_csv_pair_needs_fer2013_csv(tmp_path):
    (tmp_path / "fer2013new.csv").write_text("Usage,Image name\n")
    with pytest.raises(DataError, match="fer2013.csv"):
        load_dataset(str(tmp_path / "fer2013new.csv"), cache=False)


def test_bad_vote_counts_are_one_line_errors(tmp_path):
    root = make_ferplus(str(tmp_path / "ferplus"))
    with open(os.path.join(root, "FER2013Test", "label.csv"), "a") as f:
        f.write('fer0000009.png,"(0, 0, 48, 48)",a,b,0,0,0,0,0,0,0,0\n')
    with pytest.raises(DataError, match="vote counts must be integers"):
        load_dataset(root, cache=False)


def test_inspect_shows_exclusions_and_agreement(tmp_path):
    ds = load_dataset(make_ferplus(str(tmp_path / "ferplus")), cache=False)
    rep = inspect_dataset(ds)
    assert rep["votes"]["excluded_no_majority"] == {"train": 2, "test": 1}
    assert rep["votes"]["agreement_histogram"] == {"10/10": 1, "8/10": 1, "6/10": 2}
    text = format_report(rep)
    assert "agreement" in text and "train: 2, test: 1" in text


@pytest.mark.realdata
def test_real_ferplus_majority_test_set():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "ferplus")
    if not os.path.isdir(root):
        pytest.skip("../shared/datasets/ferplus is not here")
    ds = load_dataset(root)
    assert len(ds.split("test")) == 3137
    assert len(ds.classes) == 8
