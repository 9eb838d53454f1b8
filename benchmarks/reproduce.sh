#!/bin/sh
# Reproduce every shipped model and every figure of README.md's results block.
#
#   sh benchmarks/reproduce.sh                       # everything, in order
#   sh benchmarks/reproduce.sh ckplus48 tables       # some sections (names below)
#
# Sections: fer2013_cnn, ferplus_cnn, architectures, fer2013_classical, ckplus48,
# measurements, tables.
# Run from the project root with classicfer installed with the cnn extra
# (`pip install ".[cnn,serve,dask]"`) and the datasets in $DATA. Each command records
# its exact command line, versions, seed and git commit beside its figures
# (results/**/run.json, results/cnn/*.json, ...). Checkpoints go to checkpoints/
# (gitignored). Cost on a 2-core box: fer2013_cnn ~9 CPU hours (cpu_s_all_epochs in
# results/cnn/summary_run*.json), the CK+48 CNN rows ~6 CPU hours (cpu in their
# metrics.json), the classical rows of both datasets ~3.5 h wall (total_fit_time).
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-python}
DATA=${DATA:-../shared/datasets}
GROWN=checkpoints/fer2013-cnn-grow/best.pt   # the grown network (training run 3)

# One training run of scripts/train_cnn.py; its summary and per-epoch history are kept as
# results/cnn/summary_run<RUN>.json and history_run<RUN>.jsonl.
train() {
  run=$1; ckpt=$2; shift 2
  $PY scripts/train_cnn.py "$@" --ckpt "$ckpt"
  mv results/cnn/summary.json "results/cnn/summary_run$run.json"
  cp "$ckpt/history.jsonl" "results/cnn/history_run$run.jsonl"
}

# ---------------------------------------------------------------------------------------
# The shipped FER-2013 CNN: classicfer/bundled_models/fer2013-cnn/ (1.2 M parameters, flip
# averaging inside the ONNX graph). Ten training runs in seven steps, most started from an
# earlier one; each fits Training, selects its epoch on PublicTest and reports PrivateTest.
# Every choice between runs was made on PublicTest (val_acc in summary_run*.json).
# ---------------------------------------------------------------------------------------
fer2013_cnn() {
  # 1. The 0.3 M network (widths 16-128, squeeze-excitation): a 14-epoch one-cycle,
  #    warm-up 15 %, peak lr 3e-3.
  train 1 checkpoints/fer2013-cnn-run1 --epochs 14 --threads 1
  # 2. A warm restart from run 1: a second one-cycle, peak lr 1.5e-3, warm-up 10 %.
  train 2 checkpoints/fer2013-cnn-run2 --epochs 16 --threads 2 --lr 1.5e-3 --warmup 0.1 \
      --init-from checkpoints/fer2013-cnn-run1/best.pt
  # 3. The grown network: run 2's network plus a fourth double-conv stage (256 channels on
  #    3x3 maps; 1.2 M parameters); run 2's layers are copied, the new stage and the head
  #    start fresh. The CK+48 CNN rows fine-tune this checkpoint ($GROWN).
  train 3 checkpoints/fer2013-cnn-grow --epochs 36 --threads 1 --lr 2e-3 --warmup 0.1 \
      --widths 16,32,64,128,256 --init-from checkpoints/fer2013-cnn-run2/best.pt --grow
  # 4. A warm restart from run 3 (peak lr 1e-3).
  train 4 checkpoints/fer2013-cnn-run4 --epochs 14 --threads 1 --lr 1e-3 --warmup 0.1 \
      --init-from "$GROWN"
  # 5. Stochastic weight averaging from run 4, three settings; each ends once the average
  #    no longer improves on PublicTest (--stop-after: 10, 21 and 17 epochs). Run 5a is
  #    the second teacher of run 7b.
  train 5a checkpoints/fer2013-cnn-run5a --epochs 40 --stop-after 10 --threads 1 --swa \
      --lr 5e-4 --seed 0 --init-from checkpoints/fer2013-cnn-run4/best.pt
  train 5b checkpoints/fer2013-cnn-run5b --epochs 40 --stop-after 21 --threads 1 --swa \
      --lr 1e-3 --seed 1 --init-from checkpoints/fer2013-cnn-run4/best.pt
  train 5c checkpoints/fer2013-cnn-run5c --epochs 40 --stop-after 17 --threads 1 --swa \
      --lr 1e-3 --seed 2 --init-from checkpoints/fer2013-cnn-run4/best.pt
  # 6. The 1.2 M network from scratch: an 80-epoch one-cycle (an interrupted run continues
  #    with the same command plus --resume).
  train 6 checkpoints/fer2013-cnn-run6 --epochs 80 --threads 2 --lr 3e-3 --warmup 0.1 \
      --widths 16,32,64,128,256 --seed 5
  # 7. SWA from run 6, plain (a, ended after 3 epochs) and with knowledge distillation from
  #    runs 6 and 5a (b). Run 7b is the highest on PublicTest: the shipped model.
  train 7a checkpoints/fer2013-cnn-run7a --epochs 8 --stop-after 3 --threads 1 --swa \
      --lr 5e-4 --seed 0 --init-from checkpoints/fer2013-cnn-run6/best.pt
  train 7b checkpoints/fer2013-cnn-run7b --epochs 8 --threads 1 --swa --lr 5e-4 --seed 0 \
      --init-from checkpoints/fer2013-cnn-run6/best.pt \
      --teacher checkpoints/fer2013-cnn-run6/best.pt \
      --teacher checkpoints/fer2013-cnn-run5a/best.pt --distill 0.5 --distill-t 2
  $PY -c "
import json
runs = [json.load(open(f'results/cnn/summary_run{r}.json'))
        for r in ('1', '2', '3', '4', '5a', '5b', '5c', '6', '7a', '7b')]
json.dump(runs, open('results/cnn/runs.json', 'w'), indent=2)"
  # Export with flip averaging in the graph (results/cnn/export.md), then the temperature
  # (fitted on PublicTest), the harness reports (results/fer2013/official/fer2013-cnn,
  # results/fer2013-to-ckplus48/cross-dataset/fer2013-cnn) and the model card.
  $PY scripts/export_cnn.py --ckpt checkpoints/fer2013-cnn-run7b/best.pt \
      --train-summary results/cnn/runs.json --tta-flip
  $PY scripts/responsible_card.py
  mkdir -p checkpoints-shipped/fer2013-cnn
  cp checkpoints/fer2013-cnn-run7b/best.pt checkpoints-shipped/fer2013-cnn/best.pt
}

# ---------------------------------------------------------------------------------------
# The FER+ default model (classicfer/bundled_models/ferplus-cnn): the FER-2013 network fine-tuned on
# FER+ vote distributions with train-time corruptions (scripts/train_ferplus.py says how),
# exported with flip averaging, calibrated on half of FER+ val, evaluated, carded.
# About 0.6 CPU hour on a 2-core box (30 epochs of ~70 s); a stopped run continues with
# --resume. The classical pipelines of the cross-dataset matrix are fitted here too.
# ---------------------------------------------------------------------------------------
ferplus_cnn() {
  $PY scripts/train_ferplus.py --epochs 30 --ckpt checkpoints/ferplus-a --threads 1 \
      --fer-weight 0.3
  $PY scripts/train_ferplus.py --ckpt checkpoints/ferplus-a \
      --export classicfer/bundled_models/ferplus-cnn --name ferplus-cnn
  classicfer card classicfer/bundled_models/ferplus-cnn --calibrate "$DATA/ferplus" --stdout >/dev/null
  classicfer model-digest --record-bundled
  for d in ferplus fer2013; do
    classicfer fit --data "$DATA/$d" --features hog+lbp+landmarks --classifier svm \
        --param pca=200 --param C=10 --param align=eyes --param align_margin=0 \
        --out "checkpoints/$d-hog+lbp+landmarks-svm" --force -q
  done
  classicfer evaluate --data "$DATA/ferplus" --model ferplus-cnn --out results -q
  $PY benchmarks/generalisation.py --model fer2013-cnn=fer2013-cnn \
      --model ferplus-cnn=ferplus-cnn \
      --model fer2013-hog+lbp+landmarks-svm=checkpoints/fer2013-hog+lbp+landmarks-svm \
      --model ferplus-hog+lbp+landmarks-svm=checkpoints/ferplus-hog+lbp+landmarks-svm \
      --robustness --robustness-for fer2013-cnn --robustness-for ferplus-cnn \
      --out results/generalisation
  $PY benchmarks/generalisation.py --model fer2013-cnn=fer2013-cnn \
      --model ferplus-cnn=ferplus-cnn --split val --out results/generalisation/val
  classicfer card classicfer/bundled_models/ferplus-cnn --report results/ferplus/official/ferplus-cnn \
      --generalisation results/generalisation
}

# ---------------------------------------------------------------------------------------
# The architecture comparison (results/architectures/, README's Architectures table): each
# family x input side trained from scratch by one recipe (FER+ vote distributions, 8 epochs,
# seed 0, one thread), scored in the cross-dataset matrix and the robustness suite, then
# fine-tuned to CK+48 (subject-grouped 10-fold, 8 epochs per fold, from its own checkpoint);
# dlib's face-recognition ResNet as a frozen backbone with a head chosen on FER+ val; int8
# copies of the CNNs (kept where FER+ val accuracy drops by <= 0.5 point; matrix only, the
# robustness suite for the shipped default's copy); the shipped default and its int8 copy
# as reference rows. Latency is measured again at the end, on an
# otherwise idle machine.
# ---------------------------------------------------------------------------------------
ARCHS="vgg:48 resnet:48 mobilenet:48 vgg:64 resnet:64 mobilenet:64"
architectures() {
  gen="$PY benchmarks/generalisation.py --update --out results/architectures"
  for spec in $ARCHS; do
    a=${spec%:*}; s=${spec#*:}; run=checkpoints/arch/$a$s
    w=""; [ "$a" = vgg ] && w="--widths 16,32,64,128,256"
    # shellcheck disable=SC2086
    classicfer train-cnn --data "$DATA/ferplus" --targets votes --arch "$a" $w --size "$s" \
        --epochs 8 --out "$run" --threads 1 --seed 0 --quiet
    $gen --model "$a-$s=$run/model" --robustness
    $PY scripts/cnn_ckplus_transfer.py --harness --arm transfer --init "$run/checkpoints/best.pt" \
        --epochs 8 --threads 1 --tta-flip --tag "_$a-$s"
    $gen --latency-only --model "$a-$s=$run/model" \
        --finetune "$a-$s=results/ckplus48/subject-kfold/cnn-transfer_$a-$s"
    classicfer quantize "$run/model" --data "$DATA/ferplus" --out "$run/int8" --force -q \
        && $gen --model "$a-$s-int8=$run/int8"
  done
  classicfer grid --data "$DATA/ferplus" --features embedding --classifier logreg,svm \
      --param C=0.1,1,10 --cv official --n-jobs 1 --out results/architectures/embedding-grid --quiet
  # the head with the best mean_test_accuracy (FER+ val) in its summary.csv: svm, C=10
  classicfer fit --data "$DATA/ferplus" --features embedding --classifier svm --param C=10 \
      --out checkpoints/arch/dlib-embedding --force --quiet
  $gen --model dlib-embedding=checkpoints/arch/dlib-embedding
  classicfer quantize ferplus-cnn --data "$DATA/ferplus" --out checkpoints/arch/ferplus-cnn-int8 \
      --force -q
  $gen --model ferplus-cnn=ferplus-cnn --model ferplus-cnn-int8=checkpoints/arch/ferplus-cnn-int8 \
      --robustness
  $PY scripts/cnn_ckplus_transfer.py --harness --arm transfer --init checkpoints/ferplus-a/best.pt \
      --epochs 8 --threads 1 --tta-flip --tag _ferplus-cnn   # the default's own run (ferplus_cnn)
  models=$($PY -c "import json; m = json.load(open('results/architectures/models.json'))['models']
print(' '.join(f'--model {n}={f[\"path\"]}' for n, f in m.items()))")
  # shellcheck disable=SC2086
  $gen --latency-only $models \
      --finetune ferplus-cnn=results/ckplus48/subject-kfold/cnn-transfer_ferplus-cnn
}

# ---------------------------------------------------------------------------------------
# FER-2013 classical rows (official protocol: fit Training, select on PublicTest where a
# parameter has several values, report PrivateTest).
# ---------------------------------------------------------------------------------------
fer2013_classical() {
  classicfer evaluate --data "$DATA/fer2013" --protocol official --features hog+lbp \
      --classifier svm --param pca=150 --param C=10 --name hog+lbp-svm --quiet
  classicfer evaluate --data "$DATA/fer2013" --protocol official --features hog+lbp+landmarks \
      --classifier svm --param pca=200 --param C=10 --param ensemble=False \
      --name hog+lbp+landmarks-svm --quiet
  classicfer evaluate --data "$DATA/fer2013" --protocol official --features hog+lbp+landmarks \
      --classifier svm --param pca=200 --param C=10 --param align=eyes --param align_margin=0 \
      --name aligned-hog+lbp+landmarks-svm --quiet
  # The best classical FER-2013 pipeline as a deployable model folder (29 MB of support
  # vectors, so not committed), its harness report and its cost through the runtime.
  classicfer fit --data "$DATA/fer2013" --features hog+lbp+gabor+multilbp+landmarks \
      --classifier svm --param pca=200 --param C=10 --param align=eyes --param align_margin=0 \
      --n-jobs 2 --out checkpoints/fer-aligned-svm
  classicfer evaluate --data "$DATA/fer2013" --model checkpoints/fer-aligned-svm \
      --name aligned-hog+lbp+gabor+multilbp+landmarks-svm --quiet
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
      $PY benchmarks/classical_export_latency.py --model checkpoints/fer-aligned-svm
}

# ---------------------------------------------------------------------------------------
# CK+48 rows: subject-grouped stratified 10-fold (the harness's partition, seed 0). The
# best CNN and the best classical model are cross-validated again on four more partitions
# (fold seeds 1-4: report folders <name>_fs<seed>); README's table gives their mean ± sd.
# ---------------------------------------------------------------------------------------
ckplus48() {
  [ -f "$GROWN" ] || { echo "ckplus48: $GROWN is missing: run the fer2013_cnn section" >&2; exit 1; }
  ck="--data $DATA/ckplus48 --protocol subject-kfold"
  classicfer evaluate $ck --features hog --classifier linear-svm --quiet
  classicfer evaluate $ck --features hog --classifier knn --quiet
  classicfer evaluate $ck --features hog+gabor+regionhog --classifier svm --param pca=100 \
      --param C=10 --name hog+gabor+regionhog-svm --quiet
  $PY scripts/cnn_ckplus_transfer.py --arm scratch --epochs 14 --tag _e14 --harness --threads 1
  $PY scripts/cnn_ckplus_transfer.py --arm transfer --epochs 14 --tag _e14_tta --harness \
      --tta-flip --init "$GROWN" --threads 1
  $PY scripts/cnn_ckplus_transfer.py --arm transfer --epochs 14 --tag _e14_tta_m3 --harness \
      --tta-flip --members 3 --init "$GROWN" --threads 1
  for FS in 0 1 2 3 4; do
    S=""; [ "$FS" != 0 ] && S="_fs$FS"
    classicfer evaluate $ck --seed "$FS" --features hog+landmarks --classifier svm \
        --param pca=100 --param C=10 --param align=eyes --param align_margin=-0.1 --flip \
        --name "aligned-hog+landmarks-svm$S" --quiet
    $PY scripts/cnn_ckplus_transfer.py --arm transfer --epochs 14 --tag "_e14_tta_m5$S" \
        --harness --tta-flip --members 5 --init "$GROWN" --threads 1 --fold-seed "$FS"
  done
}

# ---------------------------------------------------------------------------------------
# Measurements under results/ (the kiosk latency line of README's results block included).
# ---------------------------------------------------------------------------------------
measurements() {
  # --fer-wheel/--fer-python add the third-party `fer` package to the comparison.
  $PY benchmarks/latency.py --runs 300 --variants
  $PY benchmarks/serve_load.py
  $PY benchmarks/serve_load.py --tag haar -- --detector haar
  $PY benchmarks/serve_load.py --test-model --tag linear-test
  $PY benchmarks/face.py --skip-rates --repeats 30
  $PY benchmarks/face.py --skip-latency --cnn-limit 300
  $PY benchmarks/face.py --false-positives
  $PY benchmarks/load_datasets.py --repeats 2 --no-csv
  $PY benchmarks/features_speed.py --n-jobs 2
  $PY benchmarks/distributed.py --chunk-size 1024 --mem-chunk 1024
  $PY scripts/responsible_groups_demo.py
}

# ---------------------------------------------------------------------------------------
# The comparison tables: results/README.md and README.md's results block.
# ---------------------------------------------------------------------------------------
tables() {
  classicfer compare results
  $PY benchmarks/readme_results.py
}

[ $# -gt 0 ] || set -- fer2013_cnn ferplus_cnn architectures fer2013_classical ckplus48 \
    measurements tables
for section in "$@"; do
  case $section in
    fer2013_cnn|ferplus_cnn|architectures|fer2013_classical|ckplus48|measurements|tables)
      "$section" ;;
    *) echo "unknown section: $section (fer2013_cnn, ferplus_cnn, fer2013_classical," \
            "ckplus48, measurements, tables)" >&2; exit 1 ;;
  esac
done
