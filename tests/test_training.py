"""The training recipe: parameter groups, schedule, accumulation, clipping, and the replay
of the reference implementation's own training trace."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch
from synthetic_records import random_records

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.collate import collate
from mcrt_sklearn.model import MCRT, MCRTConfig, load_checkpoint
from mcrt_sklearn.training import (
    OptimizerStep,
    TrainingRecipe,
    WarmupPolynomialDecay,
    named_param_groups,
    replay_reference,
)

torch.set_num_threads(2)

DATA = shared_data_dir()
PARITY = DATA / "reference_parity"
EXAMPLES = DATA / "mcrt_examples"
TRACE = PARITY / "reference_training_trace.json"
NO_DROPOUT = {"drop_rate": 0.0, "attn_drop": 0.0, "drop_path_rate": 0.0}

needs_trace = pytest.mark.skipif(
    not TRACE.exists() or not (EXAMPLES / "imgs").exists(),
    reason=f"reference training trace not found under {PARITY} (shared data folder absent)",
)


def tiny_config(**kw) -> MCRTConfig:
    base = dict(num_blocks=2, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
                max_graph_len=40, drop_rate=0.0, drop_path_rate=0.0, tasks=("regression",))
    base.update(kw)
    return MCRTConfig(**base)


# --------------------------------------------------------------------------- the trace
@pytest.fixture(scope="module")
def trace():
    return json.loads(TRACE.read_text())


@pytest.fixture(scope="module")
def trace_records(trace):
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    feat = MCRTFeaturizer(images=False)
    records = []
    for cid in trace["ids"]:
        (rec,) = feat.featurize(str(EXAMPLES / "cifs" / f"{cid}.cif"))
        arr = np.load(EXAMPLES / "imgs" / f"{cid}.npy", allow_pickle=True)
        records.append(dataclasses.replace(
            rec, image=np.asarray(arr[0], dtype=np.float32),
            image_scalars=np.array([float(v) for v in arr[1:5]], dtype=np.float32)))
    return records


def _replay(trace, records, **kw):
    model = load_checkpoint(PARITY / trace["checkpoint"], overrides=NO_DROPOUT).train()
    index = {cid: i for i, cid in enumerate(trace["ids"])}
    steps = [[[index[c] for c in mb] for mb in s["micro_batches"]] for s in trace["steps"]]
    recipe = trace["recipe"]
    args = dict(lr=recipe["learning_rate"], total_steps=recipe["total_steps_T"],
                weight_decay=recipe["weight_decay"], warmup=recipe["warmup_steps"],
                accumulate=recipe["gradient_accumulation"], clip=recipe["grad_clip_norm"],
                target_mean=recipe["target_mean"], target_std=recipe["target_std"])
    args.update(kw)
    out = replay_reference(model, records, trace["targets"], steps, **args)
    model.eval()
    with torch.no_grad():
        pred = model(collate(records))["regression"].numpy()
    out["final"] = pred * recipe["target_std"] + recipe["target_mean"]
    return out


@pytest.fixture(scope="module")
def replayed(trace, trace_records):
    return _replay(trace, trace_records)


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


@needs_trace
def test_trace_param_groups_are_the_reference_groups(trace, replayed):
    ours = replayed["param_groups"]
    assert len(ours) == len(trace["param_groups"])
    for mine, ref in zip(ours, trace["param_groups"]):
        assert sorted(mine["names"]) == sorted(ref["params"])
        assert mine["weight_decay"] == ref["weight_decay"]


@needs_trace
def test_trace_learning_rates(trace, replayed):
    ref = [s["lr_before_step"] for s in trace["steps"]]
    assert np.max(np.abs(np.asarray(replayed["lrs"]) - np.asarray(ref))) < 1e-9


@needs_trace
def test_trace_losses_and_gradient_norms(trace, replayed):
    losses = [s["micro_losses"] for s in trace["steps"]]
    norms = [s["grad_norm_before_clip"] for s in trace["steps"]]
    assert _rel(replayed["losses"], losses) < 1e-4
    assert _rel(replayed["grad_norms"], norms) < 1e-4


@needs_trace
def test_trace_final_predictions(trace, replayed):
    # 1e-3 relative, not 1e-4: the biases that feed a train-mode BatchNorm have a zero
    # true gradient, and their float-noise gradient (1e-7..1e-5) is above AdamW's eps, so
    # they take lr-sized steps in directions set by rounding. Changing only the thread
    # count or the atom padding moves our final predictions by up to 3e-4 relative
    # (docs/differences.md); each recipe ingredient that this checks moves them by 4e-2
    # or more (test_trace_detects_each_recipe_change).
    assert _rel(replayed["final"], trace["final_eval_predictions"]) < 1e-3


@needs_trace
@pytest.mark.parametrize("change", ["no_clip", "no_warmup"])
def test_trace_detects_each_recipe_change(trace, trace_records, change):
    """The trace is sensitive: one recipe change and the replay no longer matches."""
    kw = {"no_clip": dict(clip=None), "no_warmup": dict(warmup=0.0)}[change]
    out = _replay(trace, trace_records, **kw)
    losses = [s["micro_losses"] for s in trace["steps"]]
    assert _rel(out["losses"], losses) > 1e-2
    assert _rel(out["final"], trace["final_eval_predictions"]) > 1e-3


# --------------------------------------------------------------------------- the parts
def test_param_groups_follow_the_reference_rule():
    model = MCRT(tiny_config(tasks=("regression", "map")))
    groups = named_param_groups(model, weight_decay=0.05, lr=1e-3, lr_mult=10.0)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0, 0.05, 0.0]
    assert [g["lr"] for g in groups] == [1e-3, 1e-3, 1e-2, 1e-2]
    body_decay, body_plain, head_decay, head_plain = (set(g["names"]) for g in groups)
    names = {n for n, _ in model.named_parameters()}
    assert body_decay | body_plain | head_decay | head_plain == names
    assert head_decay == {"regression_head.fc.weight"}
    assert head_plain == {"regression_head.fc.bias"}
    # every bias and the transformer LayerNorms are not decayed; BatchNorm weights are
    assert all(n.endswith("bias") or "norm" in n for n in body_plain)
    assert {n for n in names if n.endswith(".bias") and "_head" not in n} <= body_plain
    assert "transformer.norm.weight" in body_plain
    assert "transformer.blocks.0.norm1.weight" in body_plain
    assert "GNN_embeddings.conv_layers.0.node_update.bn_node_h.weight" in body_decay
    # the MAP head (a pre-training head) is part of the body, as in the reference
    assert any(n.startswith("map_head") for n in body_decay)
    (one,) = named_param_groups(model, 0.05, 1e-3, rule="decay_all")
    assert set(one["names"]) == names and one["weight_decay"] == 0.05
    with pytest.raises(ValueError, match="param_groups"):
        named_param_groups(model, 0.05, 1e-3, rule="bias_only")


def test_reference_schedule():
    sched = WarmupPolynomialDecay(40, 0.05)
    assert sched.warmup_steps == 2  # int(0.05 * 40)
    assert [sched(s) for s in range(4)] == [0.0, 0.5, 1.0, 1 - 1 / 38]
    assert sched(40) == 0.0 and sched(41) == 0.0
    assert WarmupPolynomialDecay(30, 0.05).warmup_steps == 1  # floor, not round (1.5)
    half = WarmupPolynomialDecay(12, 0, power=2.0, end_factor=0.1)
    assert math.isclose(half(6), 0.9 * 0.25 + 0.1) and half(12) == pytest.approx(0.1)


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def _grads_after(parts, accumulate, clip=None):
    model = _Linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    seen = {}

    def loss_fn(x, y):
        pred = model(x)
        return torch.nn.functional.mse_loss(pred, y), pred

    def grab():
        seen.update({n: p.grad.clone() for n, p in model.named_parameters()})

    log = OptimizerStep(opt, None, accumulate, clip)(parts, loss_fn, grab)
    return seen, log


def test_accumulated_micro_batches_give_the_mean_gradient():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, generator=g)
    whole, _ = _grads_after([(x, y)], 1)
    split, log = _grads_after([(x[:4], y[:4]), (x[4:], y[4:])], 2)
    for k in whole:
        torch.testing.assert_close(whole[k], split[k])
    assert log.sizes == [4, 4] and len(log.losses) == 2
    assert math.isclose(log.mean_loss, sum(log.losses) / 2, rel_tol=1e-6)
    # a last step with fewer micro-batches is still divided by ``accumulate`` (Lightning)
    short, _ = _grads_after([(x[:4], y[:4])], 2)
    first, _ = _grads_after([(x[:4], y[:4])], 1)
    for k in first:
        torch.testing.assert_close(short[k], first[k] / 2)


def test_clipping_reports_the_norm_before_clipping():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 3, generator=g) * 10, torch.randn(8, generator=g) * 10
    grads, log = _grads_after([(x, y)], 1, clip=None)
    norm = torch.sqrt(sum((v ** 2).sum() for v in grads.values()))
    assert math.isclose(log.grad_norm, float(norm), rel_tol=1e-5) and log.grad_norm > 1.0
    model = _Linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def loss_fn(xb, yb):
        pred = model(xb)
        return torch.nn.functional.mse_loss(pred, yb), pred

    clipped = {}

    step = OptimizerStep(opt, None, 1, 1.0)
    original = opt.step

    def spy(*a, **k):
        clipped["norm"] = float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())))
        return original(*a, **k)

    opt.step = spy
    log2 = step([(x, y)], loss_fn)
    assert math.isclose(log2.grad_norm, log.grad_norm, rel_tol=1e-5)
    assert math.isclose(clipped["norm"], 1.0, rel_tol=1e-4)


def _naive_replay(model, records, y, steps, lr, T, wd, accumulate):
    """An independent, plain-loop statement of the reference recipe (for the replay)."""
    no_decay = ("bias", "norm.weight", "norm1.weight", "norm2.weight", "LayerNorm.weight")
    decay, plain = [], []
    for n, p in model.named_parameters():
        (plain if any(f in n for f in no_decay) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                             {"params": plain, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98),
                            eps=1e-8)
    warm = int(0.05 * T)
    losses = []
    for k, parts in enumerate(steps):
        factor = k / warm if k < warm else 1 - (k - warm) / (T - warm)
        for group in opt.param_groups:
            group["lr"] = lr * factor
        for idx in parts:
            out = model(collate([records[i] for i in idx], require_images=False))["regression"]
            loss = ((out - y[list(idx)]) ** 2).mean()
            (loss / accumulate).backward()
            losses.append(float(loss))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    return losses


def test_replay_matches_a_plain_loop_on_another_model():
    """Nothing in the replay depends on the fixture: another size, other crystals."""
    cfg = tiny_config(num_blocks=3, hid_dim=24, num_heads=3, alignn_num_conv=2,
                      use_images=False, positional="relative")
    torch.manual_seed(3)
    base = MCRT(cfg).train()
    records = random_records(6, n_atoms=(5, 18), seed=4)
    y = np.linspace(-1.0, 2.0, 6)
    steps = [[[0, 1], [2, 3]], [[4, 5], [0, 2]], [[1, 3], [5, 4]], [[2, 0], [1, 5]]]
    a, b = MCRT(cfg), MCRT(cfg)
    a.load_state_dict(base.state_dict())
    b.load_state_dict(base.state_dict())
    a.train()
    b.train()
    out = replay_reference(a, records, y, steps, lr=1e-3, total_steps=20, accumulate=2,
                           target_mean=0.0, target_std=1.0)
    naive = _naive_replay(b, records, torch.as_tensor(y, dtype=torch.float32), steps, 1e-3, 20,
                          1e-2, 2)
    np.testing.assert_allclose(np.ravel(out["losses"]), naive, rtol=1e-5)
    assert out["lrs"][0] == [0.0, 0.0, 0.0, 0.0] and out["lrs"][1][0] == pytest.approx(1e-3)
    # The ALIGNN biases that feed a train-mode BatchNorm have a zero true gradient: AdamW
    # turns their rounding noise into lr-sized steps, so they are compared by the losses
    # above, not one by one.
    pre_bn = re.compile(r"GNN_embeddings\.(conv_layers\.\d+\.(node|edge)_update|"
                        r"gated_gcn_layers\.\d+)\.[ABCDE]\.bias$")
    compared = 0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if not pre_bn.search(name):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
            compared += 1
    assert compared > 50


def test_recipe_validation():
    with pytest.raises(ValueError, match="schedule"):
        TrainingRecipe(schedule="cosine")
    with pytest.raises(ValueError, match="accumulate"):
        TrainingRecipe(accumulate=0)
    with pytest.raises(ValueError, match="gradient_clip"):
        TrainingRecipe(gradient_clip=0.0)
