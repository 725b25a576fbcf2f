#!/usr/bin/env bash
# The paper-size MCRT without pre-training (MCRTp: 12 blocks x 768, ALIGNN encoder 256 x 4,
# exact persistence images, 50 fine-tuning epochs, lr 1e-4, batch 32 as 4 micro-batches
# of 8, dropout 0.1) on the azaphenacene lattice energy, paper protocol (random
# 80/10/10, seeds 0..4), on one GPU, within a time limit.
#
#   benchmarks/gpu_paper_size.sh OUT_DIR [extra benchmark arguments, e.g. --data-home DIR]
#
# LIMIT (seconds, default 480) bounds the benchmark; it is stopped with SIGINT when the
# limit is reached. Every finished seed is written to OUT_DIR/<task>/folds/MCRTp/fold<k>.json
# (its fit time included) and skipped when the script is run again, so the seeds left can
# be run later with the same command. OUT_DIR/gpu_paper_size.json records what it cost:
# wall time, seeds done, the GPU and the exit status. JOBS = featurisation processes.
set -uo pipefail
out=${1:?usage: gpu_paper_size.sh OUT_DIR [benchmark arguments]}; shift
LIMIT=${LIMIT:-480}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$out"
start=$(date +%s)
timeout --signal=INT --kill-after=30 "$LIMIT" \
  python -m mcrt_sklearn.benchmark --dataset azaphenacenes --target lattice_energy_kJ_per_mol \
    --protocol paper --models MCRTp --device "${DEVICE:-cuda}" --threads 4 \
    --set featurizer.n_jobs="$JOBS" --out "$out" "$@" 2>&1 | tee "$out/gpu_paper_size.log"
rc=${PIPESTATUS[0]}
python - "$out" "$rc" "$(( $(date +%s) - start ))" "$LIMIT" <<'EOF'
import json, pathlib, subprocess, sys

out, rc, wall, limit = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
folds = sorted(out.glob("*/folds/MCRTp/fold*.json"))
done = [json.loads(p.read_text()) for p in folds]
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False).stdout.strip()
except OSError:
    gpu = None
summary = {"exit_status": rc, "stopped_by_limit": rc in (124, 130, 137), "limit_s": limit,
           "wall_s": wall, "gpu": gpu,
           "seeds_done": [{"fold": d["fold"], "fit_seconds": d["fit_seconds"],
                           "mae": d["metrics"]["mae"], "r2": d["metrics"]["r2"]} for d in done]}
(out / "gpu_paper_size.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary, indent=1))
EOF
exit "$rc"
