"""The command line that trains the course's checkpoints: an explicit registry of what it trains (shared).

    python -m course_utils.train classifier          # classifier.train_classifier (FID-FMNIST, notebook 02)
    python -m course_utils.train gan                 # gan.train_gan (the conditional DCGAN, notebook 02)
    python -m course_utils.train vae                 # vae.train_vae (the convolutional VAE, notebook 03)
    python -m course_utils.train diffusion           # diffusion_training.train_diffusion (the DDPM, notebook 04)
    python -m course_utils.train gpt                 # gpt_training.train_gpt (the character GPT, notebook 05)
    python -m course_utils.train hf-gpt              # hf.train_hf_gpt (GPT-2 and its BPE tokenizer, notebook 06)
    python -m course_utils.train gan --ship          # ... and replace the shipped copy in data/checkpoints

:data:`COMMANDS` is the whole list: each entry names the topic function that
trains, the checkpoints it writes, its recipes and the options it takes; the
training itself lives in the topic's module. Every run is seeded (the same
command on the same hardware gives the same weights) and shows a progress bar.
It writes ``NAME.safetensors`` and a ``NAME.json`` card to a run folder,
``data/runs/WHAT/`` (git-ignored), or to ``--out DIR``; only ``--ship`` writes
``data/checkpoints/``, and it prints each file it replaces first. Bad input (a
zero or negative count, an unknown recipe, an option the command does not
take, an output folder inside the shipped one, a missing data file) stops it
with status 2 and one line, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_utils import (
    benchmarks,
    checkpoints,
    classifier,
    diffusion_training,
    gan,
    gpt_training,
    hf,
    reference_stats,
    vae,
)
from course_utils.checkpoints import CheckpointError, announce_replacements, output_dir
from course_utils.cli import OneLineParser, errors_exit
from course_utils.data import DataUnavailableError

#: Options that only some commands take (the others apply to every command).
SPECIFIC = ("epochs", "steps", "recipe", "bench", "classifier", "curve_samples", "fid_samples")


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` that were given: the others keep the training function's own default."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _classifier(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return classifier.train_classifier(out, recipe=args.recipe or "ship", seed=args.seed,
                                       **_given(args, "epochs", "limit", "max_minutes"))


def _gan(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return gan.train_gan(out, classifier_dir=args.classifier or checkpoints.SHIPPED_DIR, recipe=args.recipe or "ship",
                         seed=args.seed,
                         **_given(args, "epochs", "limit", "curve_samples", "fid_samples", "max_minutes"))


def _vae(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    if args.bench:  # times the classic example's recipe and the course's cpu recipe; writes nothing
        return benchmarks.vae_benchmark(seed=args.seed, **({"max_epochs": args.epochs} if args.epochs else {}))
    return vae.train_vae(out, recipe=args.recipe or "ship", seed=args.seed,
                         **_given(args, "epochs", "limit", "max_minutes"))


def _diffusion(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return diffusion_training.train_diffusion(out, recipe=args.recipe or "ship", seed=args.seed,
                                              **_given(args, "epochs", "limit", "max_minutes"))


def _gpt(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    if args.bench:  # seconds to reach 1.88 nats/char, beside nanoGPT's CPU recipe in the same process; writes nothing
        result = benchmarks.gpt_benchmark(recipe=args.recipe or "cpu", seed=args.seed)
        benchmarks.print_gpt_benchmark(result)
        return result
    return gpt_training.train_gpt(out, recipe=args.recipe or "ship", seed=args.seed,
                                  **_given(args, "steps", "limit", "max_minutes"))


def _hf_gpt(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    name = args.recipe or "ship"
    return hf.train_hf_gpt(out, recipe=hf.RECIPES[name], recipe_name=name, seed=args.seed,
                           **_given(args, "steps", "limit", "max_minutes"))


@dataclass(frozen=True)
class Command:
    """One thing the command line trains."""

    help: str
    run: Callable[[argparse.Namespace, Path], dict[str, Any]]
    writes: tuple[str, ...]  # the checkpoints (or, for hf-gpt, the folder) it writes into the output folder
    options: tuple[str, ...] = ()  # which of SPECIFIC it takes
    recipes: tuple[str, ...] = ()  # --recipe's choices


COMMANDS: dict[str, Command] = {
    "classifier": Command("the FID-FMNIST classifier and its reference statistics (10 epochs)", _classifier,
                          (classifier.CLASSIFIER_NAME, reference_stats.REFERENCE_NAME), ("epochs", "recipe"),
                          tuple(classifier.RECIPES)),
    "gan": Command("the conditional DCGAN generator (30 epochs; needs the classifier)", _gan,
                   (gan.GENERATOR_NAME,), ("epochs", "recipe", "classifier", "curve_samples", "fid_samples"),
                   tuple(gan.RECIPES)),
    "vae": Command("the convolutional VAE of notebook 03 (30 epochs); --bench: its speed benchmark", _vae,
                   (vae.VAE_NAME,), ("epochs", "recipe", "bench"), tuple(vae.RECIPES)),
    "diffusion": Command("the class-conditional DDPM of notebook 04 (10 epochs; needs the classifier)", _diffusion,
                         (diffusion_training.DDPM_NAME,), ("epochs", "recipe"), tuple(diffusion_training.RECIPES)),
    "gpt": Command("the character GPT of notebook 05 (data-parallel under torchrun); --bench: its speed benchmark",
                   _gpt, (gpt_training.CHECKPOINT_NAME,), ("steps", "recipe", "bench"), tuple(gpt_training.RECIPES)),
    "hf-gpt": Command("the Hugging Face GPT-2 and BPE tokenizer of notebook 06 (data/checkpoints/hf_gpt/)", _hf_gpt,
                      (hf.HF_GPT_NAME,), ("steps", "recipe"), tuple(hf.RECIPES)),
}


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
    p = OneLineParser(prog="python -m course_utils.train", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=list(COMMANDS), help="; ".join(f"{k}: {v.help}" for k, v in COMMANDS.items()))
    p.add_argument("--epochs", type=_at_least_one, default=None,
                   help="classifier, gan, vae: epochs (default: the recipe's); vae --bench: at most this many")
    p.add_argument("--seed", type=int, default=0)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="output folder (default: data/runs/WHAT)")
    where.add_argument("--ship", action="store_true", help="write data/checkpoints, replacing the shipped copy")
    p.add_argument("--limit", type=_at_least_one, default=None,
                   help="use only the first N training images or characters (quick tests)")
    p.add_argument("--max-minutes", type=_positive_minutes, default=None,
                   help="classifier, gan, vae: stop at the end of the first epoch past this many minutes; "
                        "gpt, hf-gpt: fit the steps and the learning-rate decay into this many minutes")
    p.add_argument("--threads", type=_at_least_one, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="gan: folder holding the FID classifier (default: data/checkpoints)")
    p.add_argument("--curve-samples", type=_at_least_one, default=None,
                   help="gan: samples per FID point of the curve (default 2000)")
    p.add_argument("--fid-samples", type=_at_least_one, default=None,
                   help="gan: samples of the final FID (default 10000)")
    p.add_argument("--bench", action="store_true", default=None,
                   help="vae, gpt: time a reference recipe and the course's cpu recipe side by side (writes nothing)")
    p.add_argument("--recipe", default=None,
                   help="model size and training settings, one of the topic's recipes ("
                        + "; ".join(f"{k}: {', '.join(c.recipes)}" for k, c in COMMANDS.items() if c.recipes)
                        + "; default: ship; with --bench: cpu)")
    p.add_argument("--steps", type=_at_least_one, default=None,
                   help="gpt, hf-gpt: training steps (default: the recipe's)")
    return p


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> Command:
    """The command, once every given option is one it takes (``parser.error``, status 2, otherwise)."""
    command = COMMANDS[args.what]
    for option in SPECIFIC:
        if getattr(args, option) is not None and option not in command.options:
            takers = ", ".join(name for name, c in COMMANDS.items() if option in c.options)
            p.error(f"argument --{option.replace('_', '-')}: {args.what} does not take it (only {takers})")
    if args.recipe is not None and args.recipe not in command.recipes:
        p.error(f"argument --recipe: invalid choice: {args.recipe!r} ({args.what}: {', '.join(command.recipes)})")
    return command


@errors_exit(DataUnavailableError, CheckpointError, code=2)
def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    command = _check(p, args)
    out = output_dir(args.what, args.out, args.ship)
    if out.resolve().is_relative_to(checkpoints.SHIPPED_DIR.resolve()) and not args.ship:
        print(f"error: --out {out} is inside the shipped folder {checkpoints.SHIPPED_DIR}; only --ship replaces "
              "what the course ships", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.bench and os.environ.get("RANK", "0") == "0":  # under torchrun only the first process writes
        announce_replacements(out, list(command.writes))
    command.run(args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
