"""Accuracy of bfloat16 inference and of the fused attention against float32 (issue 17).

Run from the repository root (``nice`` it on a shared machine)::

    python benchmarks/inference_precision.py [--crystals 48] [--threads 2]

On real azaphenacene crystals (fast persistence images), in one run:

1. **[CLS] embeddings**, ``MCRTEncoder(precision="bf16")`` against ``"fp32"``, for the
   2 × 64 and 4 × 128 networks of the CPU profiles and the paper's 12 × 768 (random
   initialisation, seed 0: the error of bf16 grows with depth and width, not with
   training) — the cosine of each crystal's two embeddings (min and mean) and the largest
   element difference relative to the embedding's scale;
2. **attention**: PyTorch's fused ``scaled_dot_product_attention`` (the default path)
   against the explicit softmax path (the one ``explain`` uses), float32, same networks;
3. **a regression**: a 2 × 64 ``MCRTRegressor`` fine-tuned on the first crystals'
   lattice energies, predicting the rest with ``precision="bf16"`` and ``"fp32"`` — the
   largest and mean absolute difference in kJ/mol, beside the model's own test MAE;
4. the time of each forward pass (this machine's CPU: bf16 is emulated on CPUs without
   bf16 instructions, so the CPU times say nothing about a GPU).

Writes ``benchmarks/results/precision/inference_precision_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

OUT_DIR = Path(__file__).resolve().parent / "results" / "precision"
ARCHS = {
    "2x64": dict(hid_dim=64, num_blocks=2, num_heads=4, alignn_hidden_dim=32,
                 alignn_num_conv=2),
    "4x128": dict(hid_dim=128, num_blocks=4, num_heads=4, alignn_hidden_dim=64,
                  alignn_num_conv=2),
    "12x768": dict(hid_dim=768, num_blocks=12, num_heads=12, alignn_hidden_dim=256,
                   alignn_num_conv=4),
}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _records(n: int):
    import pandas as pd

    from mcrt_sklearn._paths import shared_data_dir
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    root = shared_data_dir() / "azaphenacenes"
    table = pd.read_csv(root / "properties.csv").sample(n, random_state=0)
    paths = [str(root / "cifs" / f"{i}.cif") for i in table["id"]]
    cache = Path(__file__).resolve().parent / "results" / "cache" / "precision"
    records = MCRTFeaturizer(image_mode="fast", cache_dir=str(cache)).transform(paths)
    return records, table["lattice_energy_kJ_per_mol"].to_numpy(float)


def _timed_transform(enc, records, precision: str):
    enc.set_params(precision=precision)
    t = time.perf_counter()
    out = enc.transform(records)
    return out, time.perf_counter() - t


def embeddings(records, device: str) -> dict:
    from mcrt_sklearn import MCRTEncoder
    from mcrt_sklearn.collate import batch_to, collate

    rows = {}
    for name, arch in ARCHS.items():
        enc = MCRTEncoder(**arch, drop_rate=0.0, random_state=0, device=device,
                          batch_size=8).fit()
        fp32, t32 = _timed_transform(enc, records, "fp32")
        bf16, t16 = _timed_transform(enc, records, "bf16")
        cos = _cosines(fp32, bf16)
        # fused against explicit attention, float32, on the raw [CLS] token
        fused, explicit = [], []
        with torch.no_grad():
            for start in range(0, len(records), 8):
                batch = batch_to(collate(records[start:start + 8]), device)
                fused.append(enc.network_.encode(batch)["raw_cls_feats"].cpu().numpy())
                explicit.append(enc.network_.encode(batch, need_weights=True)
                                ["raw_cls_feats"].cpu().numpy())
        fused, explicit = np.concatenate(fused), np.concatenate(explicit)
        rows[name] = {
            "parameters": int(sum(p.numel() for p in enc.network_.parameters())),
            "bf16_cls_cosine_min": float(cos.min()), "bf16_cls_cosine_mean": float(cos.mean()),
            "bf16_cls_max_abs_diff_over_rms": float(np.abs(fp32 - bf16).max()
                                                    / np.sqrt((fp32 ** 2).mean())),
            "sdpa_vs_explicit_max_abs_diff": float(np.abs(fused - explicit).max()),
            "sdpa_vs_explicit_cosine_min": float(_cosines(fused, explicit).min()),
            "fp32_seconds": t32, "bf16_seconds": t16,
        }
        print(name, rows[name], flush=True)
    return rows


def regression(records, y, device: str, n_train: int, epochs: int) -> dict:
    from mcrt_sklearn import MCRTRegressor

    reg = MCRTRegressor(**ARCHS["2x64"], drop_rate=0.0, use_images=True, lr=1e-3,
                        batch_size=8, accumulate=1, max_epochs=epochs, random_state=0,
                        device=device).fit(records[:n_train], y[:n_train])
    test, y_test = records[n_train:], y[n_train:]
    fp32 = reg.set_params(precision="fp32").predict(test)
    bf16 = reg.set_params(precision="bf16").predict(test)
    diff = np.abs(fp32 - bf16)
    return {"n_train": n_train, "n_test": len(test), "epochs": epochs,
            "test_mae_fp32_kJ_per_mol": float(np.abs(fp32 - y_test).mean()),
            "test_mae_bf16_kJ_per_mol": float(np.abs(bf16 - y_test).mean()),
            "bf16_vs_fp32_max_abs_diff_kJ_per_mol": float(diff.max()),
            "bf16_vs_fp32_mean_abs_diff_kJ_per_mol": float(diff.mean()),
            "target_std_kJ_per_mol": float(np.std(y_test))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--crystals", type=int, default=48, help="crystals embedded")
    p.add_argument("--train", type=int, default=96, help="regression: training crystals")
    p.add_argument("--test", type=int, default=48, help="regression: test crystals")
    p.add_argument("--epochs", type=int, default=15, help="regression: fine-tuning epochs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    records, y = _records(max(args.crystals, args.train + args.test))
    out = OUT_DIR / f"inference_precision_{args.device}.json"
    results = {"device": args.device, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "load_average_at_start": os.getloadavg(), "crystals": args.crystals,
               "images": "fast"}
    results["embeddings"] = embeddings(records[:args.crystals], args.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    results["regression"] = regression(records[:args.train + args.test],
                                       y[:args.train + args.test], args.device, args.train,
                                       args.epochs)
    print(results["regression"], flush=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
