"""The HADAS dynamic score (eq. 5-7) and the two objectives the inner search optimizes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dissimilarity(correct_shares: Sequence[float]) -> np.ndarray:
    """HADAS eq. 7 for every exit: ``dissim_i = 1 - max(N_0..N_(i-1))`` (1 for the first exit).

    Args:
        correct_shares: N_i of the sampled exits, in depth order.
    """
    n = np.asarray(correct_shares, dtype=float)
    if n.size == 0:
        return n
    best_before = np.concatenate([[0.0], np.maximum.accumulate(n)[:-1]])
    return 1.0 - best_before


def dynamic_score(
    correct_shares: Sequence[float],
    energy_ratios: Sequence[float],
    latency_ratios: Sequence[float],
    gamma: float,
) -> float:
    """HADAS eq. 5-6 as printed, over the sampled exits (those with ``I_i = 1``), depth order:

    ``D = 1/sum(I) sum_i I_i score_i``, ``score_i = N_i (E_(x_i,f)/E_b) (L_(x_i,f)/L_b)
    dissim_i^gamma``.

    Args:
        correct_shares: N_i, the share of samples exit i classifies correctly.
        energy_ratios: E_(x_i,f) / E_b, the energy of running to exit i at DVFS setting f over
            the static backbone's energy.
        latency_ratios: L_(x_i,f) / L_b, likewise for latency.
        gamma: exponent of the dissimilarity term (eq. 7).

    As printed, ``D`` grows with the energy and latency ratios: maximizing it prefers *late,
    slow* exits, the opposite of the paper's intent and of its Fig. 5 and 7, which plot energy
    gain against the mean of N_i. The inner search therefore optimizes those two quantities
    (see :func:`inner_objectives`); ``D`` is reported alongside.

    Raises:
        ValueError: no exit is sampled (eq. 5 divides by ``sum I_i``) or lengths differ.
    """
    n = np.asarray(correct_shares, dtype=float)
    e, lat = np.asarray(energy_ratios, dtype=float), np.asarray(latency_ratios, dtype=float)
    if n.size == 0:
        raise ValueError("eq. 5 needs at least one sampled exit (it divides by sum I_i)")
    if not n.shape == e.shape == lat.shape:
        raise ValueError(f"one value per exit needed, got {n.shape}, {e.shape}, {lat.shape}")
    scores = n * e * lat * dissimilarity(n) ** gamma
    return float(scores.mean())


def inner_objectives(
    correct_shares: Sequence[float],
    dynamic_energy_mj: float,
    static_energy_mj: float,
    final_correct_share: float,
) -> dict[str, float]:
    """The inner search's objectives, both maximized (what HADAS Fig. 5/7 plot).

    * ``energy_gain``: ``1 - E_dyn / E_b``, the mean energy per sample of the dynamic network
      (ideal exit policy, at its DVFS setting) relative to the static backbone at the default
      (top) clocks;
    * ``mean_correct_share``: the mean of N_i over the sampled exits; with no exit sampled the
      network is static and its only exit is the final classifier, so it is that one's N.
    """
    n = np.asarray(correct_shares, dtype=float)
    return {
        "energy_gain": 1.0 - dynamic_energy_mj / static_energy_mj,
        "mean_correct_share": float(n.mean()) if n.size else float(final_correct_share),
    }
