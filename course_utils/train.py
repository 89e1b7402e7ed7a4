"""The command line that trains the course's checkpoints; the training itself lives in each topic's module.

    python -m course_utils.train classifier          # classifier.train_classifier (FID-FMNIST, notebook 02)
    python -m course_utils.train gan                 # gan.train_gan (the conditional DCGAN, notebook 02)
    python -m course_utils.train gan --ship          # ... and replace the shipped copy in data/checkpoints

Every run is seeded (the same command on the same hardware gives the same
weights) and shows a progress bar. It writes ``NAME.safetensors`` and a
``NAME.json`` card to a run folder, ``data/runs/WHAT/`` (git-ignored), or to
``--out DIR``; only ``--ship`` writes ``data/checkpoints/``, and it prints
each file it replaces first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from course_utils import checkpoints
from course_utils.checkpoints import announce_replacements, output_dir


def _classifier(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils import evaluation
    from course_utils.classifier import CLASSIFIER_NAME, train_classifier

    announce_replacements(out, [CLASSIFIER_NAME, evaluation.REFERENCE_NAME])
    return train_classifier(out, epochs=args.epochs or 12, seed=args.seed, limit=args.limit,
                            max_minutes=args.max_minutes)


def _gan(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils.gan import GENERATOR_NAME, train_gan

    announce_replacements(out, [GENERATOR_NAME])
    return train_gan(out, classifier_dir=args.classifier or checkpoints.SHIPPED_DIR, epochs=args.epochs or 20,
                     seed=args.seed, limit=args.limit, curve_samples=args.curve_samples, fid_samples=args.fid_samples,
                     max_minutes=args.max_minutes)


#: what -> (help, the function that trains it); each topic adds its command here.
COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace, Path], dict[str, Any]]]] = {
    "classifier": ("the FID-FMNIST classifier and its reference statistics (12 epochs)", _classifier),
    "gan": ("the conditional DCGAN generator (20 epochs; needs the classifier)", _gan),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_utils.train", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=list(COMMANDS), help="; ".join(f"{k}: {v[0]}" for k, v in COMMANDS.items()))
    p.add_argument("--epochs", type=int, default=None, help="epochs (each command has its own default)")
    p.add_argument("--seed", type=int, default=0)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="output folder (default: data/runs/WHAT)")
    where.add_argument("--ship", action="store_true", help="write data/checkpoints, replacing the shipped copy")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images (quick tests)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop at the end of the first epoch past this many minutes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="gan: folder holding the FID classifier (default: data/checkpoints)")
    p.add_argument("--curve-samples", type=int, default=2000, help="gan: samples per FID point of the curve")
    p.add_argument("--fid-samples", type=int, default=10_000, help="gan: samples of the final FID")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_dir(args.what, args.out, args.ship)
    if out.resolve() == checkpoints.SHIPPED_DIR.resolve() and not args.ship:
        print(f"error: {out} is the shipped folder; pass --ship to replace what the course ships")
        return 2
    COMMANDS[args.what][1](args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
