"""ProgressiveShrinkingModule on the real elastic MobileNetV3: phases by epoch, in-place KD,
channel re-organisation once, resume mid-phase equals an unbroken run."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from datamodules.synthetic import SyntheticDataModule
from lightning_modules.ofa import ProgressiveShrinkingModule
from search.spaces import create_space
from tests.test_train import CrashAtEpoch, resumable_trainer

# A tiny elastic MobileNetV3 (all four elastic dimensions, every choice) that trains in seconds.
TINY_SPACE = {"width_mult": 0.25, "stages": 2, "resolutions": (12, 14, 16), "num_classes": 10}
PHASES = [
    {"name": "largest", "epochs": 1},
    {"name": "kernel", "epochs": 2},
    {"name": "depth", "epochs": 1, "n_subnets": 2, "depths": [4, 3]},
    {"name": "expand", "epochs": 2, "n_subnets": 2},
]
EPOCHS = 6
EXPAND_START = 4


def sgd(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def _module(**kw) -> ProgressiveShrinkingModule:
    torch.manual_seed(0)
    net = create_space("ofa_mbv3", **TINY_SPACE).build_supernet()
    args = {"phases": PHASES, "seed": 3, "grad_clip_norm": 5.0, "channels_last": True}
    args.update(kw)
    return ProgressiveShrinkingModule(net, sgd, **args)


def _data() -> SyntheticDataModule:
    return SyntheticDataModule(image_size=16, n_train=32, n_valid=16, batch_size=16)


def _trainer(tmp_path, callbacks=()) -> pl.Trainer:
    return resumable_trainer(tmp_path, EPOCHS, callbacks)


class Record(pl.Callback):
    """Every ``set_active`` (teacher and students) and every channel re-organisation, by epoch."""

    def __init__(self) -> None:
        self.active: list[tuple[int, dict]] = []
        self.reorganized_at: list[int] = []
        self.kd: list[tuple[int, float]] = []

    def on_fit_start(self, trainer, module) -> None:
        set_active, reorganize = module.net.set_active, module.net.reorganize_channels

        def record_active(arch):
            if module.training:
                self.active.append((trainer.current_epoch, dict(arch)))
            set_active(arch)

        def record_reorganize():
            self.reorganized_at.append(trainer.current_epoch)
            reorganize()

        module.net.set_active = record_active
        module.net.reorganize_channels = record_reorganize

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.kd.append((trainer.current_epoch, float(trainer.callback_metrics["train/kd"])))


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> tuple[ProgressiveShrinkingModule, Record]:
    """The whole schedule in one run, recorded (the reference of the resume tests)."""
    module, rec = _module(), Record()
    _trainer(tmp_path_factory.mktemp("unbroken"), [rec]).fit(module, datamodule=_data())
    return module, rec


def test_phases_by_epoch_teacher_then_students_at_one_resolution(unbroken):
    module, rec = unbroken
    top = module.max_arch
    assert [module.phase_index_at(e) for e in range(EPOCHS)] == [0, 1, 1, 2, 3, 3]
    assert rec.reorganized_at == [EXPAND_START]  # once, when the expand phase starts
    steps_per_epoch = 2  # 32 images, batch 16
    for epoch in range(EPOCHS):
        calls = [a for e, a in rec.active if e == epoch]
        phase = module.phases[module.phase_index_at(epoch)]
        if phase.name == "largest":
            assert calls == [top] * steps_per_epoch  # no teacher pass, max arch only
            continue
        per_step = 1 + phase.n_subnets  # the teacher, then the step's sub-networks
        assert len(calls) == per_step * steps_per_epoch
        for s in range(steps_per_epoch):
            teacher, *students = calls[s * per_step : (s + 1) * per_step]
            assert teacher == {**top, "resolution": students[0]["resolution"]}
            assert len({a["resolution"] for a in students}) == 1
            for a in students:
                for label, v in a.items():
                    if label.endswith(".depth"):
                        kernel = phase.name == "kernel"
                        assert v in ({4} if kernel else set(phase.depths or (2, 3, 4))), label
                    if label.endswith(".expand") and phase.name != "expand":
                        assert v == top[label]
    assert all(kd == 0 for e, kd in rec.kd if e == 0)  # the largest phase distils nothing
    assert all(kd > 0 for e, kd in rec.kd if e > 0)


def _assert_same_run(a: ProgressiveShrinkingModule, b: ProgressiveShrinkingModule) -> None:
    assert a.sampler.rng.bit_generator.state == b.sampler.rng.bit_generator.state
    assert a.channels_reorganized and b.channels_reorganized
    for k, v in a.net.state_dict().items():
        torch.testing.assert_close(b.net.state_dict()[k], v, msg=k, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("crash_epoch", "reorganized_after_resume"),
    [(2, [EXPAND_START]), (EXPAND_START + 1, [])],
    ids=["mid-kernel-phase", "mid-expand-phase"],
)
def test_resume_mid_phase_equals_unbroken_and_reorganizes_once(
    tmp_path, unbroken, crash_epoch, reorganized_after_resume
):
    part = _module()
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(tmp_path / "part", [CrashAtEpoch(crash_epoch)]).fit(part, datamodule=_data())
    ckpt = tmp_path / "part" / "ckpt" / "last.ckpt"
    assert torch.load(ckpt, weights_only=False)["epoch"] == crash_epoch - 1
    resumed, rec = _module(), Record()
    _trainer(tmp_path / "resumed", [rec]).fit(resumed, datamodule=_data(), ckpt_path=ckpt)
    assert rec.reorganized_at == reorganized_after_resume  # never a second time
    _assert_same_run(unbroken[0], resumed)
