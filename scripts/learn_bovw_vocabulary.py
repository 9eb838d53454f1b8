"""Learn the visual vocabulary shipped for the ``bovw`` feature.

MiniBatchKMeans on dense SIFT-like descriptors (``classicfer.features._bovw.
dense_descriptors``) of a random sample of FER-2013 *Training* crops (never
PublicTest or PrivateTest); writes ``classicfer/features/data/<stem>.npy`` (the
words, float32) and ``<stem>.json`` (sha256, scale, command, versions, seed)::

    python scripts/learn_bovw_vocabulary.py --data ../shared/datasets/fer2013
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/fer2013"))
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--cell", type=int, default=4)
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--descriptors", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stem", default="bovw_fer2013_k64")
    args = ap.parse_args(argv)

    import sklearn
    from sklearn.cluster import MiniBatchKMeans

    from classicfer.datasets import load_dataset
    from classicfer.features._bovw import dense_descriptors

    ds = load_dataset(args.data)
    rng = np.random.default_rng(args.seed)
    train = np.flatnonzero(ds.splits == "train")
    if len(train) == 0:
        sys.exit(f"{args.data}: no training split")
    pick = rng.choice(train, min(args.images, len(train)), replace=False)
    d = dense_descriptors(ds.images[pick], args.cell).reshape(-1, 128)
    d = d[rng.choice(len(d), min(args.descriptors, len(d)), replace=False)]
    km = MiniBatchKMeans(args.k, random_state=args.seed, n_init=3, batch_size=4096).fit(d)
    words = km.cluster_centers_.astype(np.float32)
    d2 = np.maximum((d * d).sum(1, keepdims=True) - 2.0 * d @ words.T
                    + (words * words).sum(1), 0.0).min(1)
    buf = io.BytesIO()
    np.save(buf, words, allow_pickle=False)
    raw = buf.getvalue()
    out = ROOT / "classicfer/features/data"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.stem}.npy").write_bytes(raw)
    meta = {"words": args.k, "dim": 128, "cell": args.cell, "scale": float(d2.mean()),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "learned_from": f"{len(pick)} random FER-2013 Training crops, {len(d)} descriptors",
            "command": "python scripts/learn_bovw_vocabulary.py "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "seed": args.seed, "python": platform.python_version(),
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}
    (out / f"{args.stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / args.stem}.npy/.json: {args.k} words, scale {meta['scale']:.4f}")


if __name__ == "__main__":
    main()
