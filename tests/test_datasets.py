"""Every loader on tiny fixtures built here; bad input; the real data when present."""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import cv2
import numpy as np
import pytest
from conftest import (
    CLASS_ANGLES,
    FER_CLASSES,
    TINY_CK_SUBJECTS_PER_CLASS,
    TINY_FER_COUNTS,
    face_crop,
    make_tiny_ckplus48,
    make_tiny_fer_folder,
    requires_shared,
)

from classicfer.datasets import LOADERS, Dataset, detect_format, load_dataset, load_fer2013_csv
from classicfer.exceptions import ClassicferError, ConfigError, DataError
from classicfer.labels import FER2013_IDS

RNG = np.random.default_rng(0)


def _write(path, img=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if img is None:
        img = face_crop(0, RNG)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


# --------------------------------------------------------------------------- FER-2013 CSV

USAGES = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2


def _fer_csv(path, rows=None, header="emotion,pixels,Usage"):
    """A 10-row FER-2013 CSV: emotion = row % 7, pixels = row index everywhere + a ramp."""
    if rows is None:
        rows = []
        for i, usage in enumerate(USAGES):
            pix = (np.arange(48 * 48) + i) % 256
            rows.append(f"{i % 7},{' '.join(map(str, pix))},{usage}")
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_fer2013_csv_ten_rows(tmp_path):
    ds = load_dataset(_fer_csv(tmp_path / "fer2013.csv"))
    assert ds.format == "fer2013-csv" and ds.name == "fer2013"
    assert ds.images.shape == (10, 48, 48) and ds.images.dtype == np.uint8
    assert list(ds.labels) == [FER2013_IDS[i % 7] for i in range(10)]
    assert list(ds.labels[:7]) == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                   "neutral"]
    assert Counter(ds.splits) == {"train": 6, "val": 2, "test": 2}
    np.testing.assert_array_equal(ds.images[3].ravel(), (np.arange(2304) + 3) % 256)
    assert ds.paths[0].endswith("fer2013.csv:2")  # line numbers, header = line 1
    assert ds.subjects is None and ds.skipped == []
    assert ds.sha256[0] == hashlib.sha256(ds.images[0].tobytes()).hexdigest()


def test_fer2013_csv_kaggle_variants(tmp_path):
    # icml_face_data.csv: "emotion, Usage, pixels" with spaces after the commas
    rows = [f"{i % 7}, {u}, {' '.join(['7'] * 2304)}" for i, u in enumerate(USAGES)]
    p = _fer_csv(tmp_path / "icml_face_data.csv", rows, header="emotion, Usage, pixels")
    ds = load_dataset(p)
    assert len(ds) == 10 and Counter(ds.splits)["test"] == 2
    # train.csv without Usage: no split
    rows = [f"{i % 7},{' '.join(['7'] * 2304)}" for i in range(4)]
    ds = load_dataset(_fer_csv(tmp_path / "train.csv", rows, header="emotion,pixels"))
    assert list(ds.splits) == [""] * 4
    # Windows line endings and quoted fields
    pix = " ".join(["9"] * 2304)
    (tmp_path / "crlf.csv").write_bytes(
        f'emotion,pixels,Usage\r\n3,"{pix}",PrivateTest\r\n5,{pix},Training\r\n'.encode())
    ds = load_dataset(tmp_path / "crlf.csv")
    assert list(ds.labels) == ["happy", "surprise"] and list(ds.splits) == ["test", "train"]
    assert (ds.images == 9).all()
    # a folder holding fer2013.csv is detected too
    (tmp_path / "d").mkdir()
    _fer_csv(tmp_path / "d" / "fer2013.csv")
    assert detect_format(tmp_path / "d") == "fer2013-csv"
    assert len(load_dataset(tmp_path / "d")) == 10


def test_fer2013_csv_bad_rows_are_skipped_and_reported(tmp_path):
    good = " ".join(["1"] * 2304)
    rows = [f"0,{good},Training",
            f"1,{' '.join(['1'] * 2303)},Training",       # one pixel short
            f"2,{good[:-1]}x,Training",                    # garbage pixel
            f"3,{' '.join(['300'] * 2304)},Training",      # out of range
            "4",                                           # missing fields
            f"five,{good},Training",                       # non-integer emotion
            f"6,{good},PrivateTest"]
    ds = load_fer2013_csv(_fer_csv(tmp_path / "fer.csv", rows))
    assert len(ds) == 2 and list(ds.labels) == ["angry", "neutral"]
    assert len(ds.skipped) == 5
    lines = [p.rsplit(":", 1)[1] for p, _ in ds.skipped]
    assert lines == ["3", "4", "5", "6", "7"]


def test_fer2013_csv_label_outside_vocabulary_is_an_error(tmp_path):
    rows = [f"7,{' '.join(['1'] * 2304)},Training"]
    with pytest.raises(DataError, match=r"fer\.csv:2: emotion id 7 is outside"):
        load_dataset(_fer_csv(tmp_path / "fer.csv", rows))


def test_fer2013_csv_without_labels_or_columns(tmp_path):
    p = tmp_path / "test.csv"
    p.write_text("pixels\n" + " ".join(["1"] * 2304) + "\n")
    with pytest.raises(DataError, match="without an 'emotion' column"):
        load_dataset(p)
    with pytest.raises(DataError, match="expected FER-2013 CSV columns"):
        load_dataset(p, format="fer2013-csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / "empty.csv", format="fer2013")


# --------------------------------------------------------------------------- FER-2013 folder

def test_fer2013_folder(tiny_fer_folder):
    assert detect_format(tiny_fer_folder) == "fer2013-folder"
    ds = load_dataset(tiny_fer_folder)
    per_class = len(FER_CLASSES)
    assert len(ds) == per_class * sum(TINY_FER_COUNTS.values())
    assert ds.images.shape[1:] == (48, 48) and ds.images.dtype == np.uint8
    assert Counter(ds.splits) == {"train": 4 * per_class, "val": 2 * per_class,
                                  "test": 2 * per_class}
    assert ds.classes == list(FER_CLASSES)
    for p, s in zip(ds.paths, ds.splits, strict=True):
        name = os.path.basename(p)
        assert s == {"Training": "train", "PublicTest": "val",
                     "PrivateTest": "test"}[name.split("_")[0]]
        assert os.path.isabs(p)
    # the sha256 recorded while reading is the file's sha256
    with open(ds.paths[5], "rb") as fh:
        assert ds.sha256[5] == hashlib.sha256(fh.read()).hexdigest()
    assert len(ds.split("val")) == 2 * per_class


def test_fer2013_folder_resizes_odd_sizes_and_uses_folder_split(tmp_path):
    root = tmp_path / "fer"
    _write(root / "train" / "happy" / "Training_1.jpg")
    _write(root / "train" / "happy" / "Training_2.png", np.zeros((64, 60), np.uint8))
    _write(root / "test" / "sad" / "img_3.jpg")  # no usage prefix: split from the folder
    ds = load_dataset(root, format="fer2013-folder")
    assert ds.images.shape == (3, 48, 48)
    assert list(ds.splits) == ["test", "train", "train"]


def test_corrupt_files_are_skipped_counted_and_reported(tiny_fer_folder):
    cls = tiny_fer_folder / "train" / "happy"
    (cls / "Training_zero.jpg").write_bytes(b"")
    good = (cls / min(os.listdir(cls))).read_bytes()
    (cls / "Training_trunc.jpg").write_bytes(good[: len(good) // 3])
    (cls / "Training_text.jpg").write_text("not an image at all")
    (cls / "notes.txt").write_text("hello")
    (cls / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: not part of the dataset
    ds = load_dataset(tiny_fer_folder)
    names = {os.path.basename(p) for p, _ in ds.skipped}
    assert {"Training_zero.jpg", "Training_text.jpg", "notes.txt"} <= names
    assert ".DS_Store" not in names
    assert len(ds) == 56 + ("Training_trunc.jpg" not in names)  # truncated JPEG may decode
    assert all(isinstance(r, str) and os.path.basename(p) in r for p, r in ds.skipped)
    assert not any(os.path.basename(p) in names for p in ds.paths)


def test_all_files_unreadable_is_an_error(tmp_path):
    (tmp_path / "d" / "happy").mkdir(parents=True)
    (tmp_path / "d" / "happy" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no readable images"):
        load_dataset(tmp_path / "d")


# --------------------------------------------------------------------------- CK+

def test_ckplus48(tiny_ckplus48):
    assert detect_format(tiny_ckplus48) == "ckplus48"
    ds = load_dataset(tiny_ckplus48)
    assert ds.format == "ckplus48" and ds.images.shape == (63, 48, 48)
    assert "anger" not in set(ds.labels) and "angry" in set(ds.labels)
    assert set(ds.labels) == {"angry", "contempt", "disgust", "fear", "happy", "sad",
                              "surprise"}
    for cls in set(ds.labels):
        assert len(set(ds.subjects[ds.labels == cls])) == TINY_CK_SUBJECTS_PER_CLASS
    assert all(os.path.basename(p).startswith(s + "_")
               for p, s in zip(ds.paths, ds.subjects, strict=True))
    assert set(ds.splits) == {""}


def _ck_release(root, sequences, frames=5, label_file=True):
    """sequences: {(subject, seq): code or None}; 640x490 grayscale frames."""
    for (subj, seq), code in sequences.items():
        for f in range(1, frames + 1):
            _write(root / "cohn-kanade-images" / subj / seq / f"{subj}_{seq}_{f:08d}.png",
                   np.full((49, 64), 10 * f, np.uint8))
        if code is not None and label_file:
            d = root / "Emotion" / subj / seq
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{subj}_{seq}_{frames:08d}_emotion.txt").write_text(f"   {code:.7e}\n")
    return root


def test_ckplus_original_release(tmp_path):
    root = _ck_release(tmp_path / "CK+", {("S005", "001"): 3, ("S010", "002"): 5,
                                          ("S010", "003"): None, ("S011", "001"): 2})
    assert detect_format(root) == "ckplus"
    ds = load_dataset(root)
    assert len(ds) == 9 and Counter(ds.labels) == {"disgust": 3, "happy": 3, "contempt": 3}
    assert set(ds.subjects) == {"S005", "S010", "S011"}
    # the last 3 frames (peak) are taken: intensities 30, 40, 50
    assert sorted({int(im[0, 0]) for im in ds.images}) == [30, 40, 50]
    ds = load_dataset(root, peak_frames=1, neutral_first=True)
    assert Counter(ds.labels) == {"neutral": 3, "disgust": 1, "happy": 1, "contempt": 1}
    neutral = {int(im[0, 0]) for im, lab in zip(ds.images, ds.labels, strict=True)
               if lab == "neutral"}
    assert neutral == {10}
    # also found one level down, as the archives unpack
    assert detect_format(tmp_path) == "ckplus"


def test_ckplus_code_outside_vocabulary(tmp_path):
    root = _ck_release(tmp_path / "ck", {("S005", "001"): 9})
    with pytest.raises(DataError, match="emotion code 9 is outside the CK\\+ vocabulary"):
        load_dataset(root)


# --------------------------------------------------------------------------- JAFFE

def test_jaffe(tmp_path):
    root = tmp_path / "jaffe"
    names = ["KA.AN1.39.tiff", "KA.HA2.30.tiff", "KL.SU1.161.tiff", "KM.NE3.3.tiff",
             "YM.DI1.58.tiff", "YM.FE2.66.tiff", "NA.SA1.200.tiff"]
    for n in names:
        _write(root / n, np.full((256, 256), 100, np.uint8))
    (root / "README").write_text("JAFFE")
    assert detect_format(root) == "jaffe"
    ds = load_dataset(root)
    assert len(ds) == 7 and ds.images.shape == (7, 256, 256)
    got = dict(zip((os.path.basename(p) for p in ds.paths),
                   zip(ds.labels, ds.subjects, strict=True), strict=True))
    assert got["KA.AN1.39.tiff"] == ("angry", "KA")
    assert got["KL.SU1.161.tiff"] == ("surprise", "KL")
    assert got["NA.SA1.200.tiff"] == ("sad", "NA")
    assert [os.path.basename(p) for p, _ in ds.skipped] == ["README"]
    assert load_dataset(root, size=(48, 48)).images.shape == (7, 48, 48)


def test_jaffe_unknown_code(tmp_path):
    for n in ["KA.AN1.39.tiff", "KA.XX1.40.tiff", "KA.HA1.41.tiff"]:
        _write(tmp_path / n)
    with pytest.raises(DataError, match="expression code 'XX' is not a JAFFE code"):
        load_dataset(tmp_path, format="jaffe")


# --------------------------------------------------------------------------- ImageFolder, CSV

def test_image_folder_flat_and_with_splits(tmp_path):
    flat = tmp_path / "flat"
    for cls in ["happiness", "anger", "neutral"]:
        for i in range(2):
            _write(flat / cls / f"{i}.jpg", np.full((30 + i, 40), 50, np.uint8))
    assert detect_format(flat) == "imagefolder"
    ds = load_dataset(flat)
    assert ds.name == "flat" and ds.format == "imagefolder"
    assert isinstance(ds.images, list) and len(ds) == 6  # sizes differ: a list
    assert ds.classes == ["angry", "happy", "neutral"] and set(ds.splits) == {""}
    assert load_dataset(flat, size=(24, 24)).images.shape == (6, 24, 24)
    split = tmp_path / "split"
    for sp in ["train", "validation", "test"]:
        _write(split / sp / "surprise" / "a.png")
        _write(split / sp / "fear" / "nested" / "b.png")
    assert detect_format(split) == "imagefolder"
    ds = load_dataset(split)
    assert Counter(ds.splits) == {"train": 2, "val": 2, "test": 2}


def test_image_folder_label_outside_vocabulary(tmp_path):
    _write(tmp_path / "d" / "happy" / "a.jpg")
    _write(tmp_path / "d" / "bored" / "b.jpg")
    with pytest.raises(DataError, match=r"bored: folder name is not an emotion"):
        load_dataset(tmp_path / "d")


def test_csv_manifest(tmp_path):
    for i in range(3):
        _write(tmp_path / "img" / f"{i}.png")
    (tmp_path / "list.csv").write_text(
        "Path,Emotion,Split,Subject\nimg/0.png,Happy,train,A\nimg/1.png,sadness,test,B\n"
        f"{tmp_path / 'img' / '2.png'},anger,,A\nimg/missing.png,happy,train,C\n")
    assert detect_format(tmp_path / "list.csv") == "csv"
    ds = load_dataset(tmp_path / "list.csv")
    assert list(ds.labels) == ["happy", "sad", "angry"]
    assert list(ds.splits) == ["train", "test", ""] and list(ds.subjects) == ["A", "B", "A"]
    assert len(ds.skipped) == 1 and "missing.png" in ds.skipped[0][1]


@pytest.mark.parametrize("body, match", [
    ("path,label\na.png,bored\n", "unknown emotion label 'bored'"),
    ("path,label\na.png,3\n", "integer label 3 needs an id table"),
    ("path,label,split\na.png,happy,holdout\n", "unknown split 'holdout'"),
    ("file_name,target\na.png,happy\n", "unknown CSV columns"),
])
def test_csv_manifest_errors(tmp_path, body, match):
    (tmp_path / "m.csv").write_text(body)
    with pytest.raises(DataError, match=match):
        load_dataset(tmp_path / "m.csv")


# --------------------------------------------------------------------------- AffectNet

def test_affectnet_original_release(tmp_path):
    root = tmp_path / "AffectNet"
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    hdr = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
           "expression,valence,arousal\n")
    train_rows, val_rows = [], []
    for i, code in enumerate([0, 1, 6, 7, 8, 10]):
        _write(root / "Manually_Annotated_Images" / "1" / f"{i}.jpg",
               np.full((60, 50), 20 * i, np.uint8))
        train_rows.append(f"1/{i}.jpg,5,5,40,40,\"1;2\",{code},0.1,0.2")
    _write(root / "Manually_Annotated_Images" / "2" / "v.png")
    val_rows.append("2/v.png,0,0,48,48,\"\",3,0,0")
    (lists / "training.csv").write_text(hdr + "\n".join(train_rows) + "\n")
    (lists / "validation.csv").write_text(hdr + "\n".join(val_rows) + "\n")
    assert detect_format(root) == "affectnet"
    ds = load_dataset(root, size=(32, 32))
    assert ds.format == "affectnet" and ds.images.shape == (5, 32, 32)
    assert list(ds.labels) == ["neutral", "happy", "angry", "contempt", "surprise"]
    assert list(ds.splits) == ["train"] * 4 + ["test"]
    assert len(ds.skipped) == 2 and all("not an emotion" in r for _, r in ds.skipped)
    cropped = load_dataset(root, crop_faces=True)
    assert cropped.images[0].shape == (40, 40)
    # the CSV alone (AffectNet ids) via --format affectnet
    # the list alone: its paths are relative to Manually_Annotated_Images, not to the CSV's
    # folder, so nothing is readable: a clear error, not a crash
    with pytest.raises(DataError, match="no readable images"):
        load_dataset(lists / "training.csv", format="affectnet")


def test_affectnet_sets_layout(tmp_path):
    root = tmp_path / "affectnet"
    for set_name, codes in {"train_set": [1, 2, 9], "val_set": [4]}.items():
        for i, code in enumerate(codes):
            _write(root / set_name / "images" / f"{i}.jpg")
            (root / set_name / "annotations").mkdir(parents=True, exist_ok=True)
            np.save(root / set_name / "annotations" / f"{i}_exp.npy", np.array(str(code)))
    assert detect_format(root) == "affectnet"
    ds = load_dataset(root)
    assert list(ds.labels) == ["happy", "sad", "fear"]
    assert list(ds.splits) == ["train", "train", "test"]
    assert len(ds.skipped) == 1


def test_affectnet_csv_manifest_with_ids(tmp_path):
    for i in range(3):
        _write(tmp_path / "faces" / f"{i}.jpg")
    (tmp_path / "labels.csv").write_text(
        "pth,label\nfaces/0.jpg,anger\nfaces/1.jpg,contempt\nfaces/2.jpg,surprise\n")
    ds = load_dataset(tmp_path / "labels.csv", format="affectnet")
    assert list(ds.labels) == ["angry", "contempt", "surprise"] and ds.name == "affectnet"
    (tmp_path / "ids.csv").write_text("pth,expression\nfaces/0.jpg,6\nfaces/1.jpg,0\n")
    assert detect_format(tmp_path / "ids.csv") == "affectnet"
    assert list(load_dataset(tmp_path / "ids.csv").labels) == ["angry", "neutral"]
    (tmp_path / "bad.csv").write_text("pth,expression\nfaces/0.jpg,12\n")
    with pytest.raises(DataError, match="label id 12 is outside the vocabulary"):
        load_dataset(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- detection, errors

def test_bad_paths_and_layouts(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="folder is empty"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.bin").write_bytes(b"123")
    with pytest.raises(DataError, match="unknown dataset layout.*--format"):
        load_dataset(tmp_path / "loose")
    (tmp_path / "x.png").write_bytes(b"123")
    with pytest.raises(DataError, match="is a file"):
        load_dataset(tmp_path / "x.png")


def test_format_names_and_options(tiny_fer_folder):
    assert isinstance(load_dataset(tiny_fer_folder, format="FER2013"), Dataset)
    with pytest.raises(ConfigError, match="unknown dataset format 'cifar'; choose from"):
        load_dataset(tiny_fer_folder, format="cifar")
    with pytest.raises(ConfigError, match="option 'peak_frames' does not apply"):
        load_dataset(tiny_fer_folder, peak_frames=2)
    with pytest.raises(DataError, match="no JAFFE images"):
        load_dataset(tiny_fer_folder, format="jaffe")


def test_every_error_is_one_line(tmp_path):
    cases = [tmp_path / "missing", tmp_path]
    for c in cases:
        with pytest.raises(ClassicferError) as info:
            load_dataset(c)
        assert "\n" not in str(info.value)


def _tiny_ferplus(tmp_path):
    root = tmp_path / "ferplus"
    votes = {"FER2013Train": "0,10,0,0,0,0,0,0,0,0", "FER2013Valid": "0,0,9,1,0,0,0,0,0,0",
             "FER2013Test": "0,0,0,8,0,0,0,0,2,0"}  # happy, surprise, sad
    for folder, v in votes.items():
        _write(root / folder / "fer0000001.png")
        (root / folder / "label.csv").write_text(f'fer0000001.png,"(0, 0, 48, 48)",{v}\n')
    return root


def _tiny_jaffe(tmp_path):
    for name in ("KA.AN1.39.tiff", "KL.HA2.30.tiff", "NA.SA1.200.tiff"):
        _write(tmp_path / "jaffe" / name)
    return tmp_path / "jaffe"


def _tiny_affectnet(tmp_path):
    root = tmp_path / "affectnet"
    for i, code in enumerate([1, 2]):  # happy, sad
        _write(root / "train_set" / "images" / f"{i}.jpg")
        (root / "train_set" / "annotations").mkdir(parents=True, exist_ok=True)
        np.save(root / "train_set" / "annotations" / f"{i}_exp.npy", np.array(str(code)))
    return root


def _tiny_imagefolder(tmp_path):
    for cls in ("happy", "sad"):
        _write(tmp_path / "faces" / cls / "a.png")
    return tmp_path / "faces"


def _tiny_manifest(tmp_path):
    _write(tmp_path / "img" / "0.png")
    _write(tmp_path / "img" / "1.png")
    (tmp_path / "list.csv").write_text("path,label\nimg/0.png,happy\nimg/1.png,sad\n")
    return tmp_path / "list.csv"


#: format -> (writes a tiny dataset of that format under tmp_path, returns its path;
#: the labels it holds)
TINY_DATASETS = {
    "fer2013-folder": (lambda t: make_tiny_fer_folder(t / "fer"), set(FER_CLASSES)),
    "fer2013-csv": (lambda t: _fer_csv(t / "fer2013.csv"), set(FER_CLASSES)),
    "ckplus48": (lambda t: make_tiny_ckplus48(t / "ck48"),
                 {"angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"}),
    "ckplus": (lambda t: _ck_release(t / "CK+", {("S005", "001"): 3, ("S010", "002"): 5}),
               {"disgust", "happy"}),
    "ferplus": (_tiny_ferplus, {"happy", "surprise", "sad"}),
    "jaffe": (_tiny_jaffe, {"angry", "happy", "sad"}),
    "affectnet": (_tiny_affectnet, {"happy", "sad"}),
    "imagefolder": (_tiny_imagefolder, {"happy", "sad"}),
    "csv": (_tiny_manifest, {"happy", "sad"}),
}


@pytest.mark.parametrize("fmt", sorted(LOADERS))
def test_every_loader_reads_a_tiny_dataset_of_its_format(fmt, tmp_path):
    """A loader added to LOADERS fails here until TINY_DATASETS can write its format."""
    assert fmt in TINY_DATASETS, f"add a tiny {fmt} dataset to TINY_DATASETS"
    write, labels = TINY_DATASETS[fmt]
    path = write(tmp_path)
    assert detect_format(path) == fmt
    for ds in (load_dataset(path), load_dataset(path, format=fmt)):
        assert ds.format == fmt and len(ds) == len(ds.labels) > 0
        assert set(ds.labels) == labels


def test_fixture_classes_are_learnable(tiny_fer_folder):
    """The tiny fixtures carry a class signal (rotation), as conftest promises."""
    ds = load_dataset(tiny_fer_folder)
    tr, te = ds.split("train"), ds.split("test")
    ref = {c: tr.images[tr.labels == c].astype(float).mean(0) for c in tr.classes}
    pred = [min(ref, key=lambda c: np.abs(im - ref[c]).mean()) for im in te.images]
    assert np.mean(np.array(pred) == te.labels) > 0.5
    assert set(CLASS_ANGLES) >= set(FER_CLASSES)


# --------------------------------------------------------------------------- real data

FER_TABLE = {  # ../shared/README.md: class -> (train, PublicTest, PrivateTest)
    "angry": (3995, 467, 491), "disgust": (436, 56, 55), "fear": (4097, 496, 528),
    "happy": (7215, 895, 879), "neutral": (4965, 607, 626), "sad": (4830, 653, 594),
    "surprise": (3171, 415, 416),
}
CK_TABLE = {  # class -> (images, subjects)
    "angry": (135, 45), "contempt": (54, 18), "disgust": (177, 59), "fear": (75, 25),
    "happy": (207, 69), "sad": (84, 28), "surprise": (249, 83),
}


@requires_shared
@pytest.mark.slow
def test_real_fer2013(fer2013_path):
    ds = load_dataset(fer2013_path)
    assert ds.format == "fer2013-folder" and ds.images.shape == (35887, 48, 48)
    assert Counter(ds.splits) == {"train": 28709, "val": 3589, "test": 3589}
    for cls, (tr, pub, priv) in FER_TABLE.items():
        m = ds.labels == cls
        assert (np.sum(m & (ds.splits == "train")), np.sum(m & (ds.splits == "val")),
                np.sum(m & (ds.splits == "test"))) == (tr, pub, priv), cls
    assert ds.skipped == []


@requires_shared
def test_real_ckplus48(ckplus48_path):
    ds = load_dataset(ckplus48_path)
    assert ds.images.shape == (981, 48, 48) and len(set(ds.subjects)) == 118
    for cls, (n, subjects) in CK_TABLE.items():
        assert (np.sum(ds.labels == cls), len(set(ds.subjects[ds.labels == cls]))) == \
            (n, subjects), cls
