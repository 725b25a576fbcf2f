"""Training runs for tests/test_distributed.py, started as separate processes.

``python _train_worker.py ddp STORE OUT``: under ``accelerate launch``, pre-train a tiny
MCRT on the store, fine-tune a regressor from it, save both, and write on the main
process a JSON report (per-rank results gathered).

``python _train_worker.py resume RECORDS STATE OUT [KILL_EPOCH [EVERY]]``: fine-tune with
``resume_from=STATE`` (and ``resume_every=EVERY`` steps); with KILL_EPOCH (0: none),
SIGKILL itself in the middle of that epoch.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys

import numpy as np
import torch
from skorch.callbacks import Callback

torch.set_num_threads(1)

TINY = dict(hid_dim=32, num_blocks=1, num_heads=2, alignn_hidden_dim=16, alignn_num_conv=1,
            use_images=False)
#: Pre-training of the DDP check: the deterministic tasks, so that the runs with one and
#: with two processes see the same labels (MAP masks and APC pairs are drawn per process).
PRETRAIN = dict(TINY, tasks=("cdp", "sep"), drop_rate=0.0, max_epochs=4, batch_size=8,
                accumulate=2, lr=1e-3, validation_fraction=None, shuffle_atoms=False,
                random_state=0)
FINETUNE = dict(drop_rate=0.0, max_epochs=3, batch_size=8, accumulate=2, lr=1e-3,
                validation_fraction=None, shuffle_atoms=False, random_state=0)
RESUME = dict(TINY, drop_rate=0.1, max_epochs=4, batch_size=4, accumulate=2, lr=1e-3,
              validation_fraction=0.25, shuffle_atoms=True, random_state=0)


class KillAt(Callback):
    """SIGKILL this process at the second batch of ``epoch`` (1-based)."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.batches = 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training and len(net.history) == self.epoch:
            self.batches += 1
            if self.batches == 2:
                os.kill(os.getpid(), signal.SIGKILL)


def ddp(store_path: str, out: str) -> None:
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    from mcrt_sklearn import MCRTPretrainer, MCRTRegressor
    from mcrt_sklearn.store import RecordStore

    acc = Accelerator(cpu=True)
    store = RecordStore(store_path)
    pre = MCRTPretrainer(**PRETRAIN, accelerator=acc).fit(store)
    saved = pre.save(os.path.join(out, "pretrained.safetensors"))
    density = np.array([r.density for r in store], dtype=float)
    reg = MCRTRegressor(checkpoint=os.path.join(out, "pretrained.safetensors"), **FINETUNE,
                        accelerator=acc).fit(store, density)
    reg_saved = reg.save(os.path.join(out, "regressor.safetensors"))
    pred = reg.predict(store)
    ranks = gather_object([{"rank": acc.process_index, "saved": None if saved is None
                            else str(saved), "reg_saved": None if reg_saved is None
                            else str(reg_saved), "pred": pred.tolist()}])
    if acc.is_main_process:
        with open(os.path.join(out, "report.json"), "w") as fh:
            json.dump({"processes": acc.num_processes, "ranks": ranks,
                       "pretrain_loss": list(pre.history_[:, "train_loss"]),
                       "finetune_loss": list(reg.history_[:, "train_loss"])}, fh)


def resume(records_path: str, state: str, out: str, kill_epoch: str = "0",
           every: str | None = None) -> None:
    from mcrt_sklearn import MCRTRegressor

    with open(records_path, "rb") as fh:
        records, y = pickle.load(fh)
    callbacks = [("kill", KillAt(int(kill_epoch)))] if int(kill_epoch) else None
    reg = MCRTRegressor(**RESUME, resume_from=state or None, callbacks=callbacks,
                        resume_every=int(every) if every else None)
    reg.fit(records, y)
    torch.save({"weights": reg.network_.state_dict(),
                "history": [dict(epoch=int(h["epoch"]), train_loss=float(h["train_loss"]),
                                 valid_loss=float(h["valid_loss"])) for h in reg.history_],
                "best_epoch": int(reg.best_epoch_)}, out)


if __name__ == "__main__":
    {"ddp": ddp, "resume": resume}[sys.argv[1]](*sys.argv[2:])
