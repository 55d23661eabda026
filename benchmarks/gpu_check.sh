#!/usr/bin/env bash
# GPU check (needs a CUDA GPU): the GPU tests, the MC-dropout cost on the GPU, the default easy-VQA
# training on the GPU (timed), and evaluate / predict / fit-density on it. Writes its figures to OUT.
#
#   bash benchmarks/gpu_check.sh OUT [RUN]    # RUN: a trained default easy-VQA run for the MC benchmark
#
# Extra training overrides can come in GPU_CHECK_OVERRIDES (e.g. "train.epochs=1" for a smoke run);
# GPU_CHECK_SUITE=1 also runs the VQA test suite there (a few minutes; per-test results in OUT/pytest_gpu.txt).
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT [RUN]}
run=${2:-benchmarks/runs/easy-vqa-default}
mkdir -p "$out"
gpu_run=$(mktemp -d)/gpu-run  # weights stay out of OUT: only the figures land there
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
$py -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1

echo "== GPU tests"
$py -m pytest -q -p no:cacheprovider tests/test_devices.py tests/train/test_loop.py 2>&1 | tail -25
if [ -n "${GPU_CHECK_SUITE:-}" ]; then
    # the VQA test suite with --device auto picking the GPU; one line per test, written as it goes, so a run
    # stopped at a time limit still says which tests failed (audio tests need librosa / soundfile / av)
    echo "== VQA test suite on the GPU"
    $py -m pytest -v -p no:cacheprovider -m "not slow" -rfE --tb=line tests/cli tests/tasks tests/serve \
        tests/explain tests/uncertainty tests/metrics tests/models tests/train tests/test_configs.py \
        --ignore=tests/cli/test_sync_cli.py --ignore=tests/tasks/sync/test_sync.py \
        --ignore=tests/metrics/test_sync.py --ignore=tests/models/test_sync_expert.py 2>&1 \
        | tee "$out/pytest_gpu.txt" | grep -E "FAILED|ERROR|passed|failed" | tail -40
fi

echo "== MC-dropout cost on the GPU"
$py benchmarks/mc_dropout.py --run "$run" --device cuda && cp benchmarks/results/mc_dropout_cuda.json "$out/"

echo "== default easy-VQA training on the GPU"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
$py -m mumo.cli train vqa --out "$gpu_run" --json ${GPU_CHECK_OVERRIDES:-} > "$out/train.json"
t1=$(date +%s.%N)
tail -c 600 "$out/train.json"
echo "training wall time (CLI, start to end) $($py -c "print(round($t1 - $t0, 1))") s"

echo "== evaluate, fit-density and predict on the GPU"
$py -m mumo.cli fit-density "$gpu_run" --device cuda --json > "$out/fit_density.json" && cat "$out/fit_density.json"
$py -m mumo.cli fit-temperature "$gpu_run" --device cuda --json > "$out/fit_temperature.json" \
    && cat "$out/fit_temperature.json"
t0=$(date +%s.%N)
$py -m mumo.cli evaluate "$gpu_run" --mc-samples 20 --ood noise --device cuda --json > "$out/evaluate.json"
t1=$(date +%s.%N)
echo "evaluate wall $($py -c "print(round($t1 - $t0, 1))") s"
$py -c "import json,sys; r=json.load(open(sys.argv[1])); print({k: r[k] for k in ('accuracy','ece','nll','temperature','auroc_misclassification','auroc_ood','auroc_ood_per_image')}, r['auroc_ood_by_score'])" "$out/evaluate.json"
img=$($py -c "import easy_vqa; print(easy_vqa.get_test_image_paths()[0])")
$py -m mumo.cli predict "$gpu_run" --image "$img" --question "what shape is in the image?" --mc-samples 20 \
    --abstain-on feature_density --abstain 1e9 --image-uncertainty --device cuda
$py -m mumo.cli explain "$gpu_run" --evaluate --images 64 --device cuda --json > "$out/explain.json" \
    && echo "explain --evaluate ok"
rm -rf "$(dirname "$gpu_run")"
