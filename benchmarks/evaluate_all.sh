#!/usr/bin/env bash
# Regenerate the committed evaluation runs under results/ and results/README.md.
#
#   benchmarks/evaluate_all.sh            # every run below, then classicfer compare
#   ONLY=ckplus48 benchmarks/evaluate_all.sh   # just the CK+48 runs
#
# Each run writes results/<dataset>/<protocol>/<model>/ (metrics.json, per_class.csv,
# confusion.csv/png, misclassified.png, confusions.md, predictions.csv, folds.csv and
# run.json with the exact command, versions, seed, git commit and data manifest hash).
# Seed 0 everywhere. Runs are niced: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/datasets}
OUT=${OUT:-results}
SEED=${SEED:-0}
ONLY=${ONLY:-}
CLASSICFER=${CLASSICFER:-classicfer}
run() { echo "+ $*" >&2; nice -n 10 "$CLASSICFER" "$@"; }

# CK+48, subject-grouped stratified 10-fold (no subject on both sides of a fold).
CK_MODELS=(
  "hog linear-svm"
  "lbp linear-svm"
  "hog+lbp linear-svm"
  "hog logreg"
  "hog svm"
  "hog knn"
  "hog xgboost"
)
# FER-2013: fit Training, report PrivateTest (PublicTest unused: no grid here).
# Not run on FER-2013: svm (RBF, 28k samples: too slow for this shared 2-core box),
# landmarks/embedding (dlib on 36k images).
FER_MODELS=(
  "hog linear-svm"
  "hog+lbp linear-svm"
  "hog logreg"
)

if [[ -z "$ONLY" || "$ONLY" == ckplus48 ]]; then
  for m in "${CK_MODELS[@]}"; do
    set -- $m
    run evaluate --data "$DATA/ckplus48" --protocol subject-kfold --folds 10 --seed "$SEED" \
      --features "$1" --classifier "$2" --out "$OUT" --quiet
  done
fi

if [[ -z "$ONLY" || "$ONLY" == fer2013 ]]; then
  for m in "${FER_MODELS[@]}"; do
    set -- $m
    run evaluate --data "$DATA/fer2013" --protocol official --seed "$SEED" \
      --features "$1" --classifier "$2" --out "$OUT" --quiet
  done
  # The shipped CNN (trained on FER-2013 Training, early-stopped on PublicTest).
  if [[ -f classicfer/models/fer2013-cnn/model.json ]]; then
    run evaluate --data "$DATA/fer2013" --protocol official --seed "$SEED" \
      --model classicfer/models/fer2013-cnn --out "$OUT" --quiet
  fi
fi

run compare "$OUT"
