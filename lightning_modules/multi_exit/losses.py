"""The HADAS exit-training loss (eq. 4): NLL plus distillation from the backbone's classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def distillation_kl(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Per-sample ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` (Hinton et al. 2015).

    The ``T^2`` keeps the gradient scale of the soft term independent of ``T``. (HADAS's public
    code divides probabilities instead; this is the standard KD term that eq. 4 cites via [7].)
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    return temperature**2 * kl


def exit_loss(
    exit_logits: Sequence[torch.Tensor],
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """HADAS eq. 4: mean over samples and the M-1 candidate exits of NLL + KD.

    ``L = 1/N sum_n 1/(M-1) sum_m [NLL(y_n, yhat_mn) + KD(yhat_mn, yhat_Mn)]`` with NLL the
    cross-entropy of exit m's logits and KD :func:`distillation_kl` against the backbone's final
    classifier ``yhat_M`` (a fixed teacher: no gradient flows into it).

    Args:
        exit_logits: one (N, classes) tensor per candidate exit.
        teacher_logits: (N, classes) logits of the final classifier.
        targets: (N,) labels.
        temperature: KD temperature T.
    """
    if not exit_logits:
        raise ValueError("eq. 4 needs at least one exit")
    teacher = teacher_logits.detach()
    per_exit = [
        F.cross_entropy(z, targets, reduction="none") + distillation_kl(z, teacher, temperature)
        for z in exit_logits
    ]
    return torch.stack(per_exit).mean()
