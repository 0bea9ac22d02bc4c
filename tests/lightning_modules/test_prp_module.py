"""PRPModule (PRP-NAS Alg. 1): which parameters each step trains, pruning, resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from datamodules.synthetic import SyntheticDataModule
from lightning_modules.prp import PRPModule
from search.evaluators import TableEvaluator
from search.spaces import create_space
from tests.test_train import CrashAtEpoch, resumable_trainer

OBJECTIVES = [
    {"metric": "acc_top1", "mode": "max"},
    {"metric": "latency_ms", "mode": "min", "device": "edgegpu"},
]


@pytest.fixture(scope="module")
def rank_source():
    return TableEvaluator(metric_columns={"acc_top1": "acc_cifar10_test"})


def _module(rank_source, **kw) -> PRPModule:
    torch.manual_seed(0)
    space = create_space("nb201", channels=4, cells_per_stage=1)
    args = dict(
        fair_epochs=1,
        n_sampled=16,
        top_n=4,
        prune_start_epoch=0,
        prune_every=1,
        prune_select=4,
        ref_samples=16,
        grad_clip_norm=None,
        seed=3,
    )
    args.update(kw)
    return PRPModule(
        space.build_supernet(),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        rank_source=rank_source,
        objectives=OBJECTIVES,
        alpha_optimizer=lambda p: torch.optim.Adam(p, lr=0.1),
        heldout_archs=space.sample_unique(np.random.default_rng(0), 20),
        **args,
    )


def _data() -> SyntheticDataModule:
    return SyntheticDataModule(n_train=64, n_valid=16, batch_size=32)


class Snapshots(pl.Callback):
    """Alpha after every batch; weights and alpha around every alpha step."""

    def __init__(self) -> None:
        self.batch_alpha: list[torch.Tensor] = []
        self.around_alpha_step: list[tuple] = []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.batch_alpha.append((trainer.current_epoch, module.alpha.detach().clone()))

    def on_fit_start(self, trainer, module) -> None:
        step = module.alpha_step

        def wrapped():
            before = (copy.deepcopy(module.net.state_dict()), module.alpha.detach().clone())
            step()
            after = (copy.deepcopy(module.net.state_dict()), module.alpha.detach().clone())
            self.around_alpha_step.append((before, after))

        module.alpha_step = wrapped


def test_weight_steps_leave_alpha_and_alpha_steps_leave_weights(rank_source, tmp_path):
    module = _module(rank_source, prune=False)
    snaps = Snapshots()
    resumable_trainer(tmp_path, max_epochs=3, callbacks=[snaps]).fit(module, datamodule=_data())
    assert module.alpha_steps == 2 and len(snaps.around_alpha_step) == 2
    for (w0, a0), (w1, a1) in snaps.around_alpha_step:
        assert not torch.equal(a0, a1)  # alpha moved
        for k in w0:
            assert torch.equal(w0[k], w1[k]), k  # no weight moved
    # within a Pareto epoch the weight steps never touch alpha
    by_epoch: dict[int, list[torch.Tensor]] = {}
    for epoch, alpha in snaps.batch_alpha:
        by_epoch.setdefault(epoch, []).append(alpha)
    for alphas in by_epoch.values():
        assert all(torch.equal(alphas[0], a) for a in alphas)
    # and in the Pareto phase they train the argmax path only
    assert module.in_pareto_phase


def test_alpha_loss_reaches_alpha_only(rank_source):
    module = _module(rank_source)
    archs, F = module.sample_measured(16)
    from search.pareto import pareto_ranks

    losses = module.alpha_losses(module.choice_indices(archs), pareto_ranks(F))
    losses["total"].backward()
    assert module.alpha.grad is not None and module.alpha.grad.abs().sum() > 0
    assert all(p.grad is None for p in module.net.parameters())
    x = torch.randn(2, 3, 32, 32)
    module.alpha.grad = None
    module.net.set_active(module.argmax_arch())
    torch.nn.functional.cross_entropy(module.net(x), torch.tensor([0, 1])).backward()
    assert module.alpha.grad is None
    assert any(p.grad is not None for p in module.net.parameters())


def test_sampling_never_draws_held_out_or_unmeasured(rank_source):
    module = _module(rank_source)
    archs, F = module.sample_measured(16)
    assert not np.isnan(F).any()
    keys = {module_key(a) for a in archs}
    assert len(keys) == 16 and not keys & module.heldout


def module_key(arch):
    from search.spaces import canonical_json

    return canonical_json(arch)


def test_pruning_shrinks_supernet_and_sampler(rank_source, tmp_path):
    module = _module(rank_source)
    resumable_trainer(tmp_path, max_epochs=3).fit(module, datamodule=_data())
    assert len(module.prune_events) == 2
    alive = module.alive_ops()
    assert sum(map(len, alive.values())) < 30  # something was pruned
    assert module.net.decisions == {k: tuple(v) for k, v in alive.items()}
    for _ in range(20):
        arch = module.net.sample(np.random.default_rng(_))
        assert all(arch[k] in alive[k] for k in arch)
    removed = [op for e in module.prune_events for ops in e["removed"].values() for op in ops]
    assert removed
    sel = module.final_selection(threshold=0.0)
    assert all(len(v) >= 1 and set(v) <= set(alive[k]) for k, v in sel.items())


def test_prune_checkpoint_resume_equals_unbroken_run(rank_source, tmp_path):
    full = _module(rank_source)
    resumable_trainer(tmp_path / "full", max_epochs=4).fit(full, datamodule=_data())

    part = _module(rank_source)
    with pytest.raises(RuntimeError, match="simulated crash"):
        resumable_trainer(tmp_path / "part", 4, [CrashAtEpoch(3)]).fit(part, datamodule=_data())
    assert part.prune_events  # the crash came after a prune
    resumed = _module(rank_source)
    resumable_trainer(tmp_path / "resumed", 4).fit(
        resumed, datamodule=_data(), ckpt_path=tmp_path / "part" / "ckpt" / "last.ckpt"
    )
    assert resumed.alpha_steps == full.alpha_steps == 3
    assert resumed.prune_events == full.prune_events
    torch.testing.assert_close(resumed.alpha, full.alpha)
    assert torch.equal(resumed.alive, full.alive)
    assert resumed.net.decisions == full.net.decisions
    for k, v in full.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[k], v, msg=k)
