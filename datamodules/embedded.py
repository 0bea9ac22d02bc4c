"""Build the embedded CIFAR-10 subset that ships with the package.

The subset holds the first ``n_train`` train and ``n_test`` test JPEGs of every class from a
CIFAR-10 ImageFolder zip (``train/<class>/*.jpg``, ``test/<class>/*.jpg``), stored unchanged, so
``python train.py`` trains on real images on a fresh offline machine. Rebuild it with::

    python -m datamodules.embedded /path/to/cifar10_jpeg.zip
"""

from __future__ import annotations

import argparse
import zipfile
from collections import defaultdict
from pathlib import Path

EMBEDDED_ZIP = Path(__file__).parent / "data" / "cifar10_subset.zip"


def write_subset(source: Path, target: Path, n_train: int = 500, n_test: int = 100) -> int:
    """Copy the first images per class and split into ``target``; returns the image count."""
    per_split = {"train": n_train, "test": n_test}
    chosen: dict[tuple[str, str], list[str]] = defaultdict(list)
    with zipfile.ZipFile(source) as src:
        for name in sorted(src.namelist()):
            parts = name.split("/")
            if len(parts) != 3 or parts[0] not in per_split or not parts[2]:
                continue
            key = (parts[0], parts[1])
            if len(chosen[key]) < per_split[parts[0]]:
                chosen[key].append(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as dst:
            for names in chosen.values():
                for name in names:
                    dst.writestr(name, src.read(name))
    return sum(len(v) for v in chosen.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="CIFAR-10 ImageFolder zip")
    parser.add_argument("--target", type=Path, default=EMBEDDED_ZIP)
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    args = parser.parse_args()
    count = write_subset(args.source, args.target, args.n_train, args.n_test)
    print(f"wrote {count} images to {args.target} ({args.target.stat().st_size / 1e6:.1f} MB)")
