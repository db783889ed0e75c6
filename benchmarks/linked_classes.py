"""The shared sample's photos linked under many class names: a dataset of 120+ classes without
copying a byte, for what depends on the number of classes (report, summary, probe).

``link_under_names(sample, names, target)`` gives each name a contiguous run of one source
class's photos, per split: names are dealt to the source classes in turn, and each source class's
photos (sorted by file name: Fruits-360 numbers them by rotation angle) are cut into as many
runs as it has names. Classes made from the same fruit are then told apart only by viewing
angle, so the probe has real confusions to show.

    python -m benchmarks.linked_classes TARGET [--names FILE] [--sample FOLDER] [--stride N]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "fruits-360-sample"
CLASS_NAMES = ROOT.parent / "shared" / "fruits-360-classes.txt"


def link_under_names(
    sample: Path, names: list[str], target: Path, stride: int = 1
) -> dict[str, int]:
    """Symlink ``sample``'s photos (``SPLIT/CLASS/*.jpg``) into ``target/SPLIT/NAME/``; with a
    ``stride`` above 1, only every ``stride``-th photo of each source class (a smaller dataset
    with the same classes and the same spread of viewing angles).

    Returns ``{name: photos linked}`` over both splits. Raises ``ValueError`` when there are
    fewer names than source classes (a source class would get no name).
    """
    sources = sorted(p.name for p in (sample / "Training").iterdir() if p.is_dir())
    if len(names) < len(sources):
        raise ValueError(f"{len(names)} names for {len(sources)} source classes")
    dealt = {source: names[index :: len(sources)] for index, source in enumerate(sources)}
    linked = dict.fromkeys(names, 0)
    for split in sorted(p.name for p in sample.iterdir() if p.is_dir()):
        for source, own in dealt.items():
            photos = sorted((sample / split / source).glob("*.jpg"))[::stride]
            for name, run in zip(
                own, np.array_split(np.arange(len(photos)), len(own)), strict=True
            ):
                folder = target / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for index in run:
                    os.symlink(photos[index], folder / photos[index].name)
                linked[name] += len(run)
    return linked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--names", type=Path, default=CLASS_NAMES)
    parser.add_argument("--sample", type=Path, default=SHARED_SAMPLE)
    parser.add_argument(
        "--stride", type=int, default=1, help="every STRIDE-th photo of each source class"
    )
    args = parser.parse_args(argv)
    names = args.names.read_text(encoding="utf-8").splitlines()
    linked = link_under_names(args.sample, names, args.target, args.stride)
    print(f"{sum(linked.values())} photos linked under {len(linked)} class names in {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
