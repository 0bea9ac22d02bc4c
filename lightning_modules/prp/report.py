"""What a PRP-NAS run reports: the alpha scores' ranking, the final selection, the predicted
front, and the alpha heatmap logged to W&B after every alpha step."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search.pareto import pareto_ranks
from search.ranking import pareto_score_report


def summary(
    module: Any, archs: Sequence[Mapping[str, Any]], true_acc: np.ndarray, cost: np.ndarray
) -> dict[str, Any]:
    """For ``summary.json``: the alpha scores' ranking quality on the held-out ``archs``
    (:func:`search.ranking.pareto_score_report`), the final selection, the pruning record and
    the predicted front."""
    out: dict[str, Any] = dict(pareto_score_report(module.scores(archs), true_acc, cost))
    selection = module.final_selection()
    out["final_selection"] = selection
    out["prune_events"] = module.prune_events
    out["alive_ops"] = module.alive_ops()
    out["predicted_front"] = predicted_front(module, selection)
    return out


def predicted_front(
    module: Any, selection: Mapping[str, Sequence[Any]], max_archs: int = 4096
) -> list[dict[str, Any]]:
    """Non-dominated architectures of ``selection`` by (alpha score, the objectives after the
    first one from the module's ``rank_source``); the score stands for the first (accuracy)
    objective. At most ``max_archs`` combinations are looked at."""
    combos = itertools.islice(itertools.product(*selection.values()), max_archs)
    archs = [dict(zip(selection, c, strict=True)) for c in combos]
    rows = [(a, module.objectives_of(a)) for a in archs]
    rows = [(a, f) for a, f in rows if f is not None]
    if not rows:
        return []
    scores = module.scores([a for a, _ in rows])
    F = np.c_[-scores, np.stack([f[1:] for _, f in rows])]
    keep = pareto_ranks(F) == 1
    costs = module.objectives[1:]
    return [
        {
            "arch": a,
            "score": float(s),
            **{
                o.key: float(-v if o.mode == "max" else v)
                for o, v in zip(costs, f[1:], strict=True)
            },
        }
        for (a, f), s, k in zip(rows, scores, keep, strict=True)
        if k
    ]


def _own_direction(objective: Any, value: float) -> float:
    """A minimisation-form value back in the objective's own direction."""
    return float(-value if objective.mode == "max" else value)


def log_alpha_heatmap(module: Any, logger: Any) -> None:
    """Alpha per decision and choice as a W&B image (pruned ops blank)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import wandb

    fig, ax = plt.subplots(figsize=(6, 3))
    alive = module.alive.cpu()
    shown = module.alpha.detach().cpu().masked_fill(~alive, float("nan")).numpy()
    im = ax.imshow(shown, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(module.decision_labels)), module.decision_labels)
    ax.set_xlabel("choice index")
    ax.set_title(f"alpha after Pareto epoch {module.alpha_steps} (pruned: blank)")
    fig.colorbar(im, ax=ax)
    logger.experiment.log({"prp/alpha": wandb.Image(fig), "trainer/epoch": module.current_epoch})
    plt.close(fig)
