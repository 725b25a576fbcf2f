"""Fine-tuning MCRT for a property value: :class:`MCRTRegressor` (the shared training
is in :mod:`mcrt_sklearn.estimators.finetune`; :class:`MCRTClassifier` is in
:mod:`mcrt_sklearn.estimators.classifier` and importable from here too).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from mcrt_sklearn.estimators.classifier import MCRTClassifier
from mcrt_sklearn.estimators.finetune import _MCRTFineTuner
from mcrt_sklearn.training import RegressionLoss

__all__ = ["MCRTRegressor", "MCRTClassifier"]


class MCRTRegressor(RegressorMixin, _MCRTFineTuner):
    """Fine-tune MCRT for a scalar property (lattice energy, mobility, uptake …).

    Parameters
    ----------
    checkpoint : str or path, optional
        Start from this checkpoint: a file (a reference Lightning file, or one of ours,
        e.g. from :class:`MCRTPretrainer` or ``mcrt-sklearn models convert``), the name of
        a published model (``"mcrt-pretrained"``: the paper's weights, see
        :func:`mcrt_sklearn.pretrained.list_models`) or an http(s) URL, downloaded once
        into the model cache at ``fit``. ``None``: a fresh network built from the
        architecture parameters below (MCRTp, no pre-training).
    trusted : bool
        Allow full unpickling of a checkpoint that needs it (see ``load_checkpoint``).
    hid_dim, num_blocks, num_heads, mlp_ratio, alignn_hidden_dim, alignn_num_conv, drop_rate
        Architecture, under the reference config names (used without ``checkpoint``).
    use_images : bool
        Use the persistence-image modality (False: MCRTi).
    positional : {"relative", "absolute", "none"}
        Positional information of atom tokens.
    lr, weight_decay : float
        AdamW learning rate and weight decay (of the decayed parameter groups).
    betas, eps
        AdamW betas and eps (reference: (0.9, 0.98) and 1e-8; torch's defaults are
        (0.9, 0.999) and 1e-8).
    param_groups : {"reference", "decay_all"}
        ``"reference"``: no weight decay on biases and transformer LayerNorms, the head
        in its own groups at ``lr * lr_mult``; ``"decay_all"``: one decayed group.
    lr_mult : float
        Learning-rate factor of the task head.
    head_init : {"reference", "fan_in"}
        Initial weights of a new task head (one a ``checkpoint`` lacks, or any without
        one): ``"reference"``, N(0, 0.02) as the reference; ``"fan_in"``, N(0, 1/H). The
        prediction is linear in the tanh pooler's output, so it lies within
        ``b ± Σ|w_i|``: at N(0, 0.02) about one target standard deviation for H = 64,
        which the head must outgrow before a small network can reach the extremes.
    schedule : {"reference", "legacy"}
        ``"reference"``: warm-up over ``int(warmup * T)`` optimizer steps (lr 0 on the
        first), then polynomial decay (``decay_power``) to ``end_lr`` at the last step
        ``T``; ``"legacy"``: this package's earlier rounded warm-up and linear decay.
    warmup : float
        Fraction of all optimizer steps spent warming up.
    end_lr, decay_power : float
        End learning rate and decay exponent of the reference schedule.
    batch_size : int
        Crystals per optimizer step.
    accumulate : int
        Micro-batches per optimizer step: each step accumulates the gradients of
        ``accumulate`` micro-batches of ``batch_size // accumulate`` crystals (each loss
        divided by ``accumulate``), so the ALIGNN BatchNorm sees micro-batches (reference:
        8 crystals, 4 times). ``batch_size`` must be a multiple of it.
    gradient_clip : float or None
        Clip the global gradient norm to this (reference: 1.0); None: no clipping.
    max_epochs : int
        Training epochs.
    validation_fraction : float, optional
        Hold out this fraction (seeded by ``random_state``) for validation; the
        reference holds out 10 %. None: train on everything, keep the last epoch.
    validation_split : {"random", "groups"}
        ``"random"``: the held-out structures are drawn at random (the reference);
        ``"groups"``: whole groups (``fit(X, y, groups=...)``, e.g. the molecule of each
        structure of a multi-molecule landscape) are held out, about
        ``validation_fraction`` of the structures, so that the best epoch is the one that
        predicts molecules the network has not seen — what matters when it is to predict
        new molecules.
    early_stopping : bool
        With a validation split: restore the weights of the epoch with the best
        validation metric (MAE for the regressor, loss for the classifier) at the end.
    patience : int, optional
        Also stop after this many epochs without improvement (None: train all epochs,
        as the reference does).
    shuffle_atoms : bool
        Shuffle the atom order of each crystal in every training batch (as the
        reference does; the model is permutation invariant at inference).
    pad_to : int, optional
        Pad atom tokens to this length (1023 = reference); default: batch maximum.
    recalibrate_batchnorm : bool
        After training, recompute the ALIGNN BatchNorm running statistics with one pass
        over the training data in eval mode. Off by default: the reference predicts with
        the running statistics accumulated during training. Turn it on for runs of few
        optimizer steps (tens), where the running averages (momentum 0.1, started at
        mean 0 / variance 1) have not yet reached the data's statistics.
    random_state : int, optional
        Seeds initialisation, shuffling, dropout and the validation split.
    device : {"cpu", "cuda", "auto"}
        Where to train.
    verbose : int
        0: silent; 1: skorch's epoch table and a progress bar.
    callbacks : list, optional
        Extra skorch callbacks (``(name, callback)`` pairs or callbacks).
    accelerator : accelerate.Accelerator, optional
        Train through Hugging Face ``accelerate`` (multi-GPU / multi-node, mixed
        precision; launch the script with ``accelerate launch``). ``device`` is then
        left to the accelerator.
        With P processes, ``batch_size`` stays the crystals of one optimizer step in
        all: each process computes ``accumulate // P`` of its micro-batches (so
        ``accumulate`` must be a multiple of P), gradients are averaged across processes,
        only the main process writes files and logs, and a run gives the weights of a
        single-process run with the same ``shuffle_seed`` (BatchNorm running statistics
        excepted: each process keeps those of its own micro-batches, and DDP uses the
        main process's). The last step of an epoch is only the same when the epoch
        divides into whole steps (accelerate evens out the processes' batches).
    shuffle_seed : int, optional
        Draw the epoch order from a generator of its own with this seed (None: from
        torch's global generator, seeded by ``random_state``; with several processes,
        which must all draw the same order, ``random_state`` or 0 then seeds it).
    num_workers : int
        DataLoader worker processes that read (from a record store) and collate the
        batches of ``fit`` and ``predict``; 0 (default): in this process. Each worker
        draws atom shuffling from its own stream, seeded by the DataLoader per epoch.
    precision : {"fp32", "bf16"}
        Precision of ``predict``: ``"bf16"`` runs the forward pass under bfloat16 autocast
        (training is float32, or the accelerator's ``mixed_precision``). Accuracy against
        fp32: ``benchmarks/inference_precision.py``.
    resume_from : path-like, optional
        The run's training-state file (:class:`~mcrt_sklearn.training.TrainingState`):
        written after every epoch (atomically, by the main process), and, when it exists
        as ``fit`` starts, the run continues after the last epoch it holds — weights,
        optimizer, schedule, history, best-epoch state and every random state restored,
        so a killed run, rerun, ends with the weights of an uninterrupted one. A file of
        another run (other data or settings) is refused with ``CheckpointError``.
    resume_every : int, optional
        With ``resume_from``, also write the state every this many optimizer steps, so a
        killed run continues at the step after the last one written (the epoch's order
        drawn again and the batches done skipped, never collated); None: at the end of
        every epoch only.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net.
    y_mean_, y_std_ : float
        Target standardisation learnt in ``fit``.
    history_ : skorch.History
        Per-epoch training (and validation) losses and ``valid_mae``; per batch the
        global gradient norm before clipping (``grad_norm``).
    best_epoch_ : int
        The epoch whose weights the estimator holds (the best validation MAE with a
        validation split, else the last).
    elements_seen_ : tuple of str
        The elements of the training records (sorted by atomic number).

    Warns
    -----
    mcrt_sklearn.domain.UnseenElementWarning
        In ``predict`` when a record holds an element outside ``elements_seen_``.
    sklearn.exceptions.ConvergenceWarning
        When the training loss (MSE of the standardised targets) of the epoch kept is
        0.9 or more: the network does no better on its own training data than the training
        mean (a pre-trained checkpoint fine-tuned at too high an lr can collapse so).
    """

    _task = "regression"
    _monitor = "valid_mae"

    def _encode_targets(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"MCRTRegressor predicts one target; y has shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_std_ = std if std > 0 else 1.0
        return ((y - self.y_mean_) / self.y_std_).astype(np.float32)

    def _criterion(self):
        return RegressionLoss

    #: Last-epoch training loss (MSE of standardised targets) at or above which ``fit``
    #: warns: 1.0 is the loss of predicting the training mean.
    _no_fit_loss = 0.9

    def _check_training(self) -> None:
        loss = float(self.history_[self.best_epoch_ - 1, "train_loss"])
        if loss < self._no_fit_loss:
            return
        run = len(self.history_)
        if self.best_epoch_ < run:
            # validation picked an early epoch: more epochs would not have been kept
            advice = (f"Later epochs (up to {run}) validated no better, so training longer "
                      "will not help: the structures may say little about this target, "
                      "or the validation part is too small to pick an epoch")
        else:
            advice = f"Train longer (max_epochs={self.max_epochs})"
        warnings.warn(
            f"MCRTRegressor: the training loss of the epoch kept (epoch {self.best_epoch_} "
            f"of {run}) is {loss:.3g} on standardised targets (1.0 = always predicting the "
            f"training mean): the network fits its training data little better than the "
            f"mean, or collapsed to it. {advice}"
            + (f"; a pre-trained start that collapsed needs a lower lr (lr={self.lr:g}; "
               "the paper fine-tunes at 1e-4)." if self.lr > 1e-4 else "."),
            ConvergenceWarning, stacklevel=3)

    def predict(self, X) -> np.ndarray:
        """Predicted property values (in the units of ``y``), shape (n,)."""
        return self._raw_predict(X).reshape(-1) * self.y_std_ + self.y_mean_

    def _fitted_state(self) -> dict:
        return {"y_mean": self.y_mean_, "y_std": self.y_std_}

    def _set_fitted_state(self, state: dict) -> None:
        self.y_mean_ = float(state["y_mean"])
        self.y_std_ = float(state["y_std"])
