"""Replay a workload trace on a Dynamic-OFA family: reactive controller vs the best fixed level.

    python -m search.dynamic_ofa.replay --family DIR --ckpt CKPT \\
        --trace conf/runtime/target_steps.yaml --out DIR [--processor cpu_1t] [--threads 1]

Builds the supernet from the family's space (``family.json``), loads the checkpoint, serves the
trace's requests through :class:`hardware.runtime.RuntimeManager` twice (with the controller of
``conf/runtime/controller.yaml``, and fixed at the best single level) and writes per-request
CSVs, switch events, ``summary.json`` and ``replay.png`` under ``--out``, logged to W&B (offline
unless ``WANDB_MODE`` says otherwise).

Without ``--family`` a stand-in family is built and saved under ``<out>/family``: sampled
architectures of the (trained, with ``--ckpt``, else untrained) supernet, spread over its
latency range on this CPU, each with BN statistics recalibrated on real images and its accuracy
measured; ``summary.json`` says so (``family.kind``). Requests are real CIFAR-10 test images
(``--data-dir``, else the embedded subset), or random tensors with ``--inputs random``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from hardware.base import cpu_model_name, load_average
from hardware.runtime import ReactiveController, RuntimeManager, load_family, save_family
from hardware.runtime.replay import compare, load_trace
from search.evaluators.subnet import accuracy, fingerprint, recalibrate_bn
from search.evaluators.supernet import load_supernet_weights
from search.spaces import create_space
from search.strict_json import strict_json

log = logging.getLogger("dofa_replay")
REPO = Path(__file__).resolve().parents[2]
BN_SUFFIXES = ("running_mean", "running_var")


def build_space(space: dict[str, Any]) -> Any:
    """The registered space of a family's ``space`` entry (``{"name": ..., **kwargs}``)."""
    kwargs = {k: v for k, v in space.items() if k != "name"}
    return create_space(space["name"], **kwargs)


def space_from_config(path: str | Path, num_classes: int = 10) -> dict[str, Any]:
    """``{"name": ..., **kwargs}`` of a ``conf/space/*.yaml`` (``_target_`` create_space), or
    of the ``space`` entry of a run's ``config_resolved.yaml``."""
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if "name" not in cfg and isinstance(cfg.get("space"), dict):
        cfg = cfg["space"]
    if "name" not in cfg:
        raise ValueError(f"{path} holds no space config (no 'name', no 'space' entry)")
    cfg.pop("_target_", None)
    cfg.setdefault("num_classes", num_classes)
    return cfg


def datamodule(data_dir: str | None, seed: int) -> Any:
    """CIFAR-10 (``data_dir``, else the embedded real subset), set up."""
    from datamodules.cifar import CIFARDataModule

    dm = CIFARDataModule(data_dir=data_dir, eval_batch_size=100, split_seed=0, shuffle_seed=seed)
    dm.setup("fit")
    return dm


def request_inputs(
    kind: str, dm: Any, resolution: int, seed: int, n: int = 256
) -> tuple[Callable[[int], torch.Tensor], str]:
    """Request ``i`` -> a batch-1 input, and a sentence saying what the inputs are."""
    if kind == "cifar10":
        images = []
        for x, _ in dm.test_dataloader():
            images.extend(x.split(1))
            if len(images) >= n:
                break
        images = images[:n]
        return (lambda i: images[i % len(images)]), (
            f"real CIFAR-10 test images ({len(images)}, cycled) from {dm.source}"
        )
    g = torch.Generator().manual_seed(seed)
    pool = [torch.randn(1, 3, resolution, resolution, generator=g) for _ in range(n)]
    return (lambda i: pool[i % n]), f"random N(0,1) inputs ({n}, cycled, seed {seed})"


@torch.inference_mode()
def median_latency_ms(net: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median wall-clock latency of ``net(x)`` (perf_counter) over ``repeats`` calls."""
    for _ in range(warmup):
        net(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def stand_in_family(
    net: Any,
    space: Any,
    space_entry: dict[str, Any],
    out_dir: Path,
    processor: str,
    dm: Any,
    levels: int = 6,
    candidates: int = 24,
    pool: int | None = None,
    bn_batches: int = 2,
    val_batches: int = 2,
    seed: int = 0,
    checkpoint: str | None = None,
    chain: bool = True,
) -> Path:
    """A stand-in family: the measured accuracy-latency chain of sampled architectures.

    ``candidates`` random architectures plus the smallest and the largest are timed on the
    supernet itself (batch 1, the path the runtime serves); ``pool`` of them (default
    ``2 * levels``), evenly spread over that latency range, get BN statistics recalibrated
    on ``bn_batches`` training batches of 64 (their extracted sub-network's, the contract's
    form) and top-1 accuracy on ``val_batches`` x 100 validation images. The family keeps the
    pool's Pareto chain (each member slower and more accurate than the one before; at most
    ``levels``, spread over it), as a family must be for the lookup table to mean anything;
    ``chain=False`` keeps ``levels`` of the pool spread over latency instead (enough for
    timing switches, where accuracy plays no part).
    Not Alg. 1's search: a stand-in until a family is given, labelled so in family.json
    (``kind``); on an untrained supernet its accuracies are chance-level.
    """
    rng = np.random.default_rng(seed)
    archs = [space.min_arch(), space.max_arch(), *space.sample_unique(rng, candidates)]
    uniq = {space.arch_id(a): a for a in archs}
    res = max(space.resolutions)
    x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(seed))
    # three interleaved rounds: a drift of the machine's load hits every candidate alike
    samples: dict[str, list[float]] = {aid: [] for aid in uniq}
    for _ in range(3):
        for aid, arch in uniq.items():
            net.set_active(arch)
            samples[aid].append(median_latency_ms(net, x, repeats=5, warmup=1))
    timed = sorted((statistics.median(samples[aid]), aid, arch) for aid, arch in uniq.items())
    size = min(2 * levels if pool is None else pool, len(timed))
    picks = np.unique(np.round(np.linspace(0, len(timed) - 1, size)).astype(int))
    recal = [xb for xb, _ in itertools.islice(dm.recalibration_dataloader(seed=seed), bn_batches)]
    val = list(itertools.islice(dm.val_dataloader(), val_batches))
    measured, bn = [], {}
    for k in picks:
        lat, aid, arch = timed[k]
        sub = net.extract_subnet(arch)
        recalibrate_bn(sub, recal)
        bn[aid] = {n: t for n, t in sub.state_dict().items() if n.endswith(BN_SUFFIXES)}
        acc = accuracy(sub, val)["acc_top1"]
        measured.append({"arch": dict(arch), "arch_id": aid, "acc_top1": acc, "latency_ms": lat})
    members: list[dict[str, Any]] = []
    for row in measured:  # latency ascending: keep each strict accuracy gain
        if not chain or not members or row["acc_top1"] > members[-1]["acc_top1"]:
            members.append(row)
    if len(members) > levels:
        keep = np.unique(np.round(np.linspace(0, len(members) - 1, levels)).astype(int))
        members = [members[i] for i in keep]
    trained = checkpoint is not None
    path = save_family(
        out_dir,
        space=space_entry,
        processors={processor: members},
        bn={r["arch_id"]: bn[r["arch_id"]] for r in members},
        devices={
            processor: {
                "backend": "cpu",
                "threads": torch.get_num_threads(),
                "batch_size": 1,
                "resolution": res,
                "timing": "median of 3 interleaved rounds of (median of 5 perf_counter calls "
                "after 1), on the supernet's path",
            }
        },
        checkpoint=checkpoint,
        weights_fingerprint=fingerprint(net),
        bn_images=sum(len(b) for b in recal),
        kind=(
            f"stand-in: {'the accuracy-latency chain' if chain else 'a latency spread'} "
            f"({len(members)} levels) of {len(measured)} of {len(timed)} sampled archs of "
            f"a{'' if trained else 'n untrained'} supernet"
            + ("" if trained else " (chance-level accuracies)")
            + ", not an Alg. 1 family"
        ),
        acc_images=sum(len(y) for _, y in val),
    )
    return path.parent


def machine() -> dict[str, Any]:
    """Where and how the figures were taken."""
    return {
        "host": platform.node(),
        "cpu": cpu_model_name() or platform.processor(),
        "cores": os.cpu_count(),
        "loadavg": load_average(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def log_wandb(out: Path, summary: dict[str, Any], config: dict[str, Any]) -> str | None:
    """Log the summary, the plot and the per-request tables to W&B; returns the run dir."""
    os.environ.setdefault("WANDB_MODE", "offline")
    import wandb

    run = wandb.init(
        project="hwnas",
        name=f"dofa_replay_{summary['trace']}",
        job_type="dofa_replay",
        dir=str(out),
        config=config,
    )
    try:
        scalars = {
            f"replay/{who}/{k}": v
            for who in ("controller", "fixed")
            for k, v in summary[who].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        run.summary.update({**scalars, "replay/fixed_level": summary["fixed_level"]})
        run.log({"replay/plot": wandb.Image(str(out / "replay.png"))})
        for who in ("controller", "fixed"):
            for name in ("requests", "switches"):
                path = out / who / f"{name}.csv"
                lines = [line.split(",") for line in path.read_text().splitlines()]
                if len(lines) > 1:
                    run.log({f"replay/{who}/{name}": wandb.Table(columns=lines[0], data=lines[1:])})
        return str(run.dir)
    finally:
        wandb.finish()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The replay CLI's body: build, replay both ways, write and log; returns the summary."""
    start = time.time()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trace = load_trace(args.trace)
    # read the given family first: a bad path fails before the data is decoded
    family = None if args.family is None else load_family(args.family, [args.processor])
    dm = None
    if args.inputs in ("auto", "cifar10"):
        try:
            dm = datamodule(args.data_dir, args.seed)
        except FileNotFoundError as err:
            if args.inputs == "cifar10":
                raise
            log.warning("no CIFAR-10 (%s): serving random inputs", err)
    ckpt = args.ckpt
    if family is not None:
        space = build_space(family.space)
        net = space.build_supernet()
        kind = family.meta.get("kind", "given family")
        if (
            ckpt is None
            and family.meta.get("checkpoint")
            and Path(family.meta["checkpoint"]).is_file()
        ):
            ckpt = family.meta["checkpoint"]
            log.info("no --ckpt: using the family's checkpoint %s", ckpt)
        if ckpt is not None:
            load_supernet_weights(net, ckpt)
    else:
        if dm is None:
            raise ValueError(
                "a stand-in family needs images for its BN statistics and accuracy: give "
                "--family, or CIFAR-10 (--data-dir, or the embedded subset)"
            )
        entry = space_from_config(args.space)
        space = build_space(entry)
        entry = {"name": space.name, **space.kwargs} if hasattr(space, "kwargs") else entry
        net = space.build_supernet()
        if args.ckpt is not None:
            load_supernet_weights(net, args.ckpt)
        net.eval()
        fam_dir = stand_in_family(
            net, space, entry, out / "family", args.processor, dm, levels=args.levels,
            candidates=args.candidates, pool=args.pool, bn_batches=args.bn_batches,
            val_batches=args.acc_batches,
            seed=args.seed, checkpoint=args.ckpt,
        )  # fmt: skip
        family = load_family(fam_dir, processors=[args.processor])
        kind = family.meta["kind"]
    net.eval()
    res = max(getattr(space, "resolutions", (32,)))
    inputs, inputs_note = request_inputs(
        "cifar10" if dm is not None and args.inputs != "random" else "random", dm, res, args.seed
    )
    policy = OmegaConf.to_container(OmegaConf.load(args.controller), resolve=True)
    ctrl_kwargs = {k: v for k, v in policy["controller"].items() if not k.startswith("_")}
    profiled = [lv.latency_ms for lv in family.levels(args.processor)]

    def make(controlled: bool, level: int | None) -> RuntimeManager:
        ctrl = ReactiveController(profiled, **ctrl_kwargs) if controlled else None
        return RuntimeManager(
            net, family, args.processor, controller=ctrl, level=level,
            select_on_target=controlled and bool(policy.get("select_on_target", True)),
        )  # fmt: skip

    summary = compare(
        make, trace, inputs, out, probe_requests=args.probe_requests, targets_from=args.targets_from
    )
    summary.update(
        family={
            "path": str(family.path),
            "kind": kind,
            "processor": args.processor,
            "levels": len(profiled),
            "checkpoint": ckpt,
            "supernet": f"trained ({ckpt})" if ckpt else "untrained (random init)",
        },
        inputs=inputs_note,
        controller_settings=ctrl_kwargs,
        select_on_target=bool(policy.get("select_on_target", True)),
        machine=machine(),
        command=args.command,
        wall_time_s=time.time() - start,
    )
    if args.wandb:
        summary["wandb_dir"] = log_wandb(out, summary, vars(args))
    (out / "summary.json").write_text(strict_json(summary, indent=2) + "\n")
    c, f = summary["controller"], summary["fixed"]
    log.info(
        "controller: %.1f%% met, acc %.2f%%, %d switches | fixed level %d: %.1f%% met, acc %.2f%%",
        100 * c["met_share"], c["mean_acc_top1"], c["switches"], summary["fixed_level"],
        100 * f["met_share"], f["mean_acc_top1"],
    )  # fmt: skip
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m search.dynamic_ofa.replay", description=__doc__)
    p.add_argument("--family", help="family directory (family.json + bn/); none: a stand-in")
    p.add_argument("--ckpt", help="supernet checkpoint (train.py); none: untrained weights")
    p.add_argument("--trace", default=str(REPO / "conf/runtime/target_steps.yaml"))
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--processor", default="cpu_1t", help="the family's ladder to serve")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--controller", default=str(REPO / "conf/runtime/controller.yaml"))
    p.add_argument("--space", default=str(REPO / "conf/space/ofa_mbv3.yaml"),
                   help="space config of a stand-in family")  # fmt: skip
    p.add_argument("--levels", type=int, default=6, help="stand-in family: most levels")
    p.add_argument("--candidates", type=int, default=24, help="stand-in family: archs timed")
    p.add_argument("--pool", type=int, help="stand-in family: archs scored (2 x levels)")
    p.add_argument("--bn-batches", type=int, default=2,
                   help="stand-in family: BN recalibration batches of 64 per level")  # fmt: skip
    p.add_argument("--acc-batches", type=int, default=2,
                   help="stand-in family: accuracy batches of 100 per level")  # fmt: skip
    p.add_argument("--probe-requests", type=int, default=20,
                   help="requests per level and load level in the pre-replay probe")  # fmt: skip
    p.add_argument("--targets-from", choices=("profile", "probe"), default="profile",
                   help="target_frac on the profiled or freshly probed latencies")  # fmt: skip
    p.add_argument("--inputs", choices=("auto", "cifar10", "random"), default="auto")
    p.add_argument("--data-dir", default=os.environ.get("HWNAS_CIFAR10_DIR"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=True,
                   help="log to W&B (offline unless WANDB_MODE says otherwise)")  # fmt: skip
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    args.command = "python -m search.dynamic_ofa.replay " + " ".join(argv or [])
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return run(parse_args(argv))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
