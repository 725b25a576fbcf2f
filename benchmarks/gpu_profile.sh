#!/usr/bin/env bash
# The benchmark's MCRT runs on one GPU, as committed in benchmarks/results/: the --fast
# profile (fast persistence images, baselines' settings) with a larger MCRT that a GPU
# trains in ~20 s per fold (4 blocks x 128, ALIGNN encoder 64 x 2, 30 fine-tuning epochs,
# batch 32, lr 5e-4; pre-trained 20 epochs on the whole pre-training corpus).
#
#   benchmarks/gpu_profile.sh OUT_DIR [extra benchmark arguments, e.g. --data-home DIR]
#
# Every fold is saved when done and skipped when present, so the script can be stopped
# and started again; MODELS and TASKS (environment) choose what runs. The same --set
# list on a CPU machine reproduces the results' keys, so CPU baselines and GPU MCRT folds
# share one run folder (the table's "device" column says where each model ran).
set -euo pipefail
out=${1:?usage: gpu_profile.sh OUT_DIR [benchmark arguments]}; shift
MODELS=${MODELS:-"MCRT MCRTp MCRTi"}
TASKS=${TASKS:-"le mobility roy"}
GPU_SET=(--set mcrt.hid_dim=128 --set mcrt.num_blocks=4 --set mcrt.alignn_hidden_dim=64
         --set finetune.batch_size=32 --set finetune.max_epochs=30 --set finetune.lr=5e-4
         --set pretrain.batch_size=32 --set pretrain.max_epochs=20
         --set pretrain.max_structures=null)
run() { python -m mcrt_sklearn.benchmark "$@" --fast --models $MODELS "${GPU_SET[@]}" \
            --device "${DEVICE:-cuda}" --out "$out" "${EXTRA[@]}"; }
EXTRA=("$@")
for task in $TASKS; do
  case $task in
    le) run --dataset azaphenacenes --target lattice_energy_kJ_per_mol --group group --cv 5 ;;
    mobility) run --dataset azaphenacenes --target electron_mobility_cm2_per_V_s --log10 \
                  --group group --cv 5 ;;
    roy) run --dataset roy --target relative_energy_kJ_per_mol --cv 5 ;;
    *) echo "unknown task $task (le, mobility, roy)" >&2; exit 2 ;;
  esac
done
