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
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from course_utils import checkpoints
from course_utils.checkpoints import CheckpointError, announce_replacements, output_dir
from course_utils.data import DataUnavailableError
from course_utils.runtime import errors_exit


def _classifier(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils import evaluation
    from course_utils.classifier import CLASSIFIER_NAME, train_classifier

    announce_replacements(out, [CLASSIFIER_NAME, evaluation.REFERENCE_NAME])
    return train_classifier(out, epochs=(args.epochs or 12), seed=args.seed, limit=args.limit,
                            max_minutes=args.max_minutes)


def _gan(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils.gan import GENERATOR_NAME, train_gan

    announce_replacements(out, [GENERATOR_NAME])
    return train_gan(out, classifier_dir=args.classifier or checkpoints.SHIPPED_DIR, epochs=(args.epochs or 20),
                     seed=args.seed, limit=args.limit, curve_samples=args.curve_samples, fid_samples=args.fid_samples,
                     max_minutes=args.max_minutes)


def _vae(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils import vae

    if args.bench:  # times the classic example's recipe and the course's cpu recipe; writes nothing
        return vae.benchmark(seed=args.seed, max_epochs=(args.epochs or 6))
    announce_replacements(out, [vae.VAE_NAME])
    return vae.train_vae(out, epochs=(args.epochs or vae.SHIPPED_RECIPE["epochs"]), seed=args.seed, limit=args.limit,
                         max_minutes=args.max_minutes)


def _gpt(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import os

    from course_utils import gpt

    if args.bench:  # seconds to reach 1.88 nats/char, beside nanoGPT's CPU recipe in the same process; writes nothing
        result = gpt.bench(recipe=args.recipe or "cpu", seed=args.seed)
        gpt.print_bench(result)
        return result
    if os.environ.get("RANK", "0") == "0":  # under torchrun only the first process writes
        announce_replacements(out, [gpt.CHECKPOINT_NAME])
    return gpt.train_gpt(out, recipe=args.recipe or "ship", steps=args.steps, seed=args.seed, limit=args.limit,
                         max_minutes=args.max_minutes)


def _hf_gpt(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from course_utils import hf

    recipe = hf.RECIPES[args.recipe or "ship"]
    if (out / hf.HF_GPT_NAME).exists():
        print(f"replacing {out / hf.HF_GPT_NAME}/")
    return hf.train_hf_gpt(out, recipe=recipe, steps=args.steps, seed=args.seed, limit=args.limit,
                           max_minutes=args.max_minutes, recipe_name=args.recipe or "ship")


#: what -> (help, the function that trains it); each topic adds its command here.
COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace, Path], dict[str, Any]]]] = {
    "classifier": ("the FID-FMNIST classifier and its reference statistics (12 epochs)", _classifier),
    "gan": ("the conditional DCGAN generator (20 epochs; needs the classifier)", _gan),
    "vae": ("the convolutional VAE of notebook 03 (30 epochs); --bench: its speed benchmark", _vae),
    "gpt": ("the character GPT of notebook 04 (data-parallel under torchrun); --bench: its speed benchmark", _gpt),
    "hf-gpt": ("the Hugging Face GPT-2 and BPE tokenizer of notebook 05 (data/checkpoints/hf_gpt/)", _hf_gpt),
}


class _OneLineParser(argparse.ArgumentParser):
    """Bad input: one line naming the value and what is allowed, exit status 2 (no usage block, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (python -m course_utils.train --help lists the options)\n")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give a whole number of at least 1")
    return value


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value:g} is not allowed: give a number of minutes above 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m course_utils.train", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=list(COMMANDS), help="; ".join(f"{k}: {v[0]}" for k, v in COMMANDS.items()))
    p.add_argument("--epochs", type=_at_least_one, default=None, help="epochs (each command has its own default)")
    p.add_argument("--seed", type=int, default=0)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="output folder (default: data/runs/WHAT)")
    where.add_argument("--ship", action="store_true", help="write data/checkpoints, replacing the shipped copy")
    p.add_argument("--limit", type=_at_least_one, default=None,
                   help="use only the first N training images (quick tests)")
    p.add_argument("--max-minutes", type=_positive_minutes, default=None,
                   help="classifier, gan, vae: stop at the end of the first epoch past this many minutes; "
                        "gpt, hf-gpt: fit the steps and the learning-rate decay into this many minutes")
    p.add_argument("--threads", type=_at_least_one, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="gan: folder holding the FID classifier (default: data/checkpoints)")
    p.add_argument("--curve-samples", type=_at_least_one, default=2000, help="gan: samples per FID point of the curve")
    p.add_argument("--fid-samples", type=_at_least_one, default=10_000, help="gan: samples of the final FID")
    p.add_argument("--bench", action="store_true",
                   help="vae, gpt: time a reference recipe and the course's cpu recipe side by side (writes nothing)")
    p.add_argument("--recipe", choices=["ci", "cpu", "gpu", "ship", "test"], default=None,
                   help="gpt, hf-gpt: model size and training recipe (default: ship; with --bench: cpu)")
    p.add_argument("--steps", type=_at_least_one, default=None,
                   help="gpt, hf-gpt: training steps (default: the recipe's)")
    return p


@errors_exit(DataUnavailableError, CheckpointError, code=2)
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = output_dir(args.what, args.out, args.ship)
    if out.resolve().is_relative_to(checkpoints.SHIPPED_DIR.resolve()) and not args.ship:
        print(f"error: --out {out} is inside the shipped folder {checkpoints.SHIPPED_DIR}; only --ship replaces "
              "what the course ships", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    COMMANDS[args.what][1](args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
