"""Real early exit: samples leave at the first confident exit and later blocks skip them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from search.spaces import create_space
from search.spaces.exits import (
    ExitSpace,
    MultiExitNetwork,
    candidate_positions,
    confidence_rule,
    ideal_exit_indices,
    run_early_exit,
)


class ToyBackbone(nn.Module):
    """Four identity blocks on (n, 2, 4, 4) inputs; records how many samples each block saw."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(2, 2, 1)
        self.seen: list[int] = [0] * 4

    @property
    def num_blocks(self) -> int:
        return 4

    def forward_stem(self, x):
        return x

    def forward_block(self, index, x):
        self.seen[index] += x.shape[0]
        return x

    def forward_head(self, x):
        return torch.zeros(x.shape[0], 2)


class KnownHead(nn.Module):
    """Exit at block p: logits whose confidence is channel 0 == p (confident) else uniform."""

    def __init__(self, position):
        super().__init__()
        self.position = position

    def forward(self, h):
        hit = h[:, 0, 0, 0] == self.position
        z = torch.zeros(h.shape[0], 2)
        z[hit, 1] = 10.0
        return z


def test_samples_answer_at_the_expected_exit_and_skip_later_blocks():
    bb = ToyBackbone()
    net = MultiExitNetwork(bb, positions=[0, 1, 2], input_size=(4, 4), in_channels=2)
    for p in net.positions:
        net.exits[str(p)] = KnownHead(p)
    # sample k is confident at exit k (k = 0, 1, 2); sample 3 is never confident
    x = torch.zeros(4, 2, 4, 4)
    x[:, 0, 0, 0] = torch.tensor([0.0, 1.0, 2.0, 9.0])
    bb.seen = [0] * 4
    out = net.early_exit(x, confidence_rule("max_softmax", 0.9))
    assert out.exit_index.tolist() == [0, 1, 2, 3]  # 3 = the final classifier
    assert out.blocks_run.tolist() == [1, 2, 3, 4]
    assert bb.seen == [4, 3, 2, 1]  # block i runs only on the samples still inside
    assert out.logits[0].argmax().item() == 1 and torch.equal(out.logits[3], torch.zeros(2))
    # with exit 1 switched off, sample 1 runs on to the final classifier
    bb.seen = [0] * 4
    out = net.early_exit(x, confidence_rule("entropy", 0.05), active=[0, 2])
    assert out.exit_index.tolist() == [0, 2, 1, 2] and bb.seen == [4, 3, 3, 2]
    measured = run_early_exit(
        net, [(x, torch.tensor([1, 1, 1, 0]))], confidence_rule("max_softmax", 0.9)
    )
    assert measured["exit_share"] == [0.25, 0.25, 0.25, 0.25]
    assert measured["acc_top1"] == 100.0 and measured["mean_blocks_run"] == 2.5


def test_ideal_policy_leaves_at_the_first_right_exit():
    correct = np.array([[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=bool)
    assert ideal_exit_indices(correct).tolist() == [1, 0, 2, 3]


def test_nb201_early_exit_equals_the_full_pass_per_sample():
    torch.manual_seed(0)
    backbone = create_space("nb201", channels=4, cells_per_stage=1).build_subnet(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    net = MultiExitNetwork(backbone, candidate_positions(backbone.num_blocks, first_block=2)).eval()
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        full = net(x)
    # threshold at the first exit's median confidence: about half leave there, the rest go on
    threshold = full[0].softmax(-1).amax(-1).median().item()
    out = net.early_exit(x, confidence_rule("max_softmax", threshold))
    for n in range(16):
        k = out.exit_index[n].item()
        torch.testing.assert_close(out.logits[n], full[k][n], rtol=1e-4, atol=1e-5)
    assert 0 < (out.exit_index == 0).sum() < 16  # some leave at the first exit, some go on


def test_exit_heads_use_1x1_convs_on_maps_of_2x2_or_less_and_the_candidates():
    from search.spaces.exits import ExitHead

    assert ExitHead(8, 2, 10).kernel_size == 1 and ExitHead(8, 3, 10).kernel_size == 3
    assert candidate_positions(17) == tuple(range(4, 16))  # NB201 N=5: blocks 5..16 (1-based)
    with pytest.raises(ValueError, match="no exit candidate"):
        candidate_positions(5)
    space = ExitSpace([4, 7])
    assert space.selected(space.of_positions([7])) == (7,)


def test_calibrated_threshold_keeps_accuracy_and_is_the_most_permissive():
    from search.spaces.exits import calibrate_threshold

    torch.manual_seed(1)
    backbone = create_space("nb201", channels=4, cells_per_stage=1).build_subnet(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    net = MultiExitNetwork(backbone, candidate_positions(backbone.num_blocks, first_block=2)).eval()
    x = torch.randn(64, 3, 32, 32)
    with torch.no_grad():
        y = net(x)[-1].argmax(-1)  # labels = the backbone's answers: static accuracy 100%
    y[:8] = (y[:8] + 1) % 10
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    for kind in ("max_softmax", "entropy"):
        cal = calibrate_threshold(net, batches, kind, net.positions, max_accuracy_drop=5.0)
        assert cal["static_acc"] == pytest.approx(87.5)
        real = run_early_exit(net, batches, confidence_rule(kind, cal["threshold"]))
        assert real["acc_top1"] == pytest.approx(cal["acc_top1"])  # simulation = real pass
        assert real["mean_blocks_run"] == pytest.approx(cal["mean_blocks_run"])
        assert cal["acc_top1"] >= 87.5 - 5.0
        strict = calibrate_threshold(net, batches, kind, net.positions, max_accuracy_drop=0.0)
        assert strict["mean_blocks_run"] >= cal["mean_blocks_run"]
