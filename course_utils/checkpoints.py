"""Save and load model weights as safetensors, with a JSON card beside them.

Taught in notebook 02 (the shipped generator and classifier); every later
notebook ships its checkpoints the same way.

A checkpoint ``name`` is two files:

- ``name.safetensors``: the tensors only. Loading it runs no code, unlike a
  pickled ``torch.save`` file, so a downloaded checkpoint cannot execute
  anything on your machine;
- ``name.json``: the metadata, a "model card": the card format version, the
  architecture (enough to rebuild the model with :func:`build_model`), the
  sha256 of the weights file, the torch version, the date, and whatever the
  training command adds (data, steps, seconds, hardware, measured quality).

Both files are written whole or not at all (:mod:`course_utils.files`), so a
crash never leaves half a file. A card without a weights checksum, or of a format
this code does not know, is refused.

Two folders: :data:`SHIPPED_DIR` (``data/checkpoints``, committed: what the
course ships) and :func:`runs_dir` (``data/runs``, git-ignored: where training
commands write unless told ``--ship``).

Models register themselves with :func:`register_model` (as torchvision's
models do), so a card names its class and module and :func:`build_model`
rebuilds it without a central list.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from course_utils import REPO_ROOT
from course_utils.data import data_dir
from course_utils.files import atomic_path, sha256_of

#: The checkpoints the course ships, committed with the repository.
SHIPPED_DIR = REPO_ROOT / "data" / "checkpoints"
#: The card format this code writes; it reads this one only.
CARD_FORMAT = 2

M = TypeVar("M", bound=type)
MODELS: dict[str, type[nn.Module]] = {}


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, of an unknown format, or does not fit the model."""


def runs_dir() -> Path:
    """Where training commands write by default: ``runs/`` in the data cache (git-ignored)."""
    return data_dir() / "runs"


# --- the model registry --------------------------------------------------------------------


def register_model(cls: M) -> M:
    """Class decorator: make a course model rebuildable from a card (``@register_model``).

    The class must take a ``config`` (a dataclass, or a dict of its fields) as its
    first argument and keep it as ``self.config``.
    """
    name = cls.__name__
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"a model named {name!r} is already registered (from {MODELS[name].__module__})")
    MODELS[name] = cls
    return cls


def architecture(model: nn.Module) -> dict[str, Any]:
    """``{"class", "module", "config"}``: what :func:`build_model` needs to rebuild ``model``."""
    cls = type(model)
    if MODELS.get(cls.__name__) is not cls or not is_dataclass(getattr(model, "config", None)):
        raise TypeError(f"{cls.__name__} is not a registered course model; known: {', '.join(sorted(MODELS))}")
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}
    return {"class": cls.__name__, "module": cls.__module__, "config": config}


def build_model(arch: Mapping[str, Any]) -> nn.Module:
    """Rebuild an (untrained) model from :func:`architecture`'s dict.

    The card's module is imported first when it is one of ``course_utils``'s (and
    only then: a card never makes this code import anything else).
    """
    module = str(arch.get("module", ""))
    if module.startswith("course_utils.") and arch.get("class") not in MODELS:
        importlib.import_module(module)
    cls = MODELS.get(arch.get("class", ""))
    if cls is None:
        raise ValueError(f"unknown architecture {dict(arch)!r}; registered classes: {', '.join(sorted(MODELS))}")
    return cls(dict(arch.get("config", {})))


def num_parameters(model: nn.Module) -> int:
    """The number of parameters (what the notebooks print next to each model)."""
    return sum(p.numel() for p in model.parameters())


# --- files ------------------------------------------------------------------------------------


def _paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` for ``dir/name``, ``dir/name.safetensors`` or ``dir/name.json``."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``tensors`` to ``path.safetensors`` and ``metadata`` (plus checksum, versions, date) to ``path.json``.

    Both files are written whole or not at all (:func:`course_utils.files.atomic_path`), the weights
    first, then the card that names their checksum. Returns the path of the card.
    """
    weights, card = _paths(path)
    with atomic_path(card) as tmp_card, atomic_path(weights) as tmp_weights:  # the inner one, weights, lands first
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp_weights))
        info = {"format_version": CARD_FORMAT, **metadata}
        info.update({
            "weights_file": weights.name,
            "weights_sha256": sha256_of(tmp_weights)[0],
            "weights_bytes": tmp_weights.stat().st_size,
            "num_tensors": len(tensors),
            "tensor_elements": int(sum(t.numel() for t in tensors.values())),  # parameters and buffers
            "torch_version": torch.__version__.split("+")[0],
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })
        tmp_card.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return card


def save_checkpoint(model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a registered model's ``state_dict`` and a card with its ``architecture`` and ``metadata``.

    ``path`` is ``dir/name`` (a suffix is ignored). Returns the card's path.
    """
    info = {"architecture": architecture(model), "num_parameters": num_parameters(model), **(metadata or {})}
    return save_tensors(model.state_dict(), path, info)


def finish_run(model: nn.Module, path: Path, card: dict[str, Any], summary: str) -> dict[str, Any]:
    """The end of a ``train_*`` function: save ``model`` with ``card``, print ``summary`` and where, return the card."""
    save_checkpoint(model.cpu(), path, card)
    print(f"{summary} -> {path.parent}")
    return card


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON card of checkpoint ``path``, refused if it has no weights checksum or an unknown format."""
    _, card = _paths(path)
    if not card.exists():
        raise CheckpointError(f"checkpoint card {card} not found (expected next to the .safetensors file)")
    meta = json.loads(card.read_text(encoding="utf-8"))
    version = meta.get("format_version")
    if version != CARD_FORMAT:
        raise CheckpointError(f"{card.name}: card format {version!r}, this code reads format {CARD_FORMAT}; "
                              "retrain the checkpoint or update course_utils")
    if not isinstance(meta.get("weights_sha256"), str) or len(meta["weights_sha256"]) != 64:
        raise CheckpointError(f"{card.name} has no weights checksum (weights_sha256): refusing to trust it")
    return meta


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and card of checkpoint ``path``, the weights' sha256 checked against the card."""
    weights, card = _paths(path)
    if not weights.exists():
        raise CheckpointError(
            f"checkpoint weights {weights} not found; train them (python -m course_utils.train …) "
            "or check out the repository's data/checkpoints/ folder"
        )
    meta = read_metadata(path)
    actual = sha256_of(weights)[0]
    if actual != meta["weights_sha256"]:
        raise CheckpointError(
            f"{weights.name}: sha256 {actual[:12]}… does not match {meta['weights_sha256'][:12]}… "
            f"in {card.name}: the file is corrupt or was replaced (e.g. a Git LFS pointer)"
        )
    # safetensors: a plain tensor format, nothing is unpickled or executed.
    return load_file(str(weights)), meta


def load_checkpoint(
    path: str | Path, model: nn.Module | Callable[[dict[str, Any]], nn.Module] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Load checkpoint ``path`` into a model; returns ``(model, metadata)`` with the model in eval mode.

    ``model`` is a module to fill, a factory called with the card's
    ``architecture`` dict, or None to rebuild the model from the card. A
    missing file, a checksum mismatch, or a tensor whose name or shape does not
    fit the model raises :class:`CheckpointError` naming the problem.
    """
    state, meta = load_tensors(path)
    if model is None:
        if "architecture" not in meta:
            raise CheckpointError(f"{_paths(path)[1].name} has no 'architecture': pass the model to fill")
        model = build_model(meta["architecture"])
    elif not isinstance(model, nn.Module):
        model = model(meta.get("architecture", {}))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{_paths(path)[0].name} does not fit {type(model).__name__}: "
            f"missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{_paths(path)[0].name}: tensor '{name}' has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[name].shape)} (a different architecture config?)"
            )
    model.load_state_dict(state)
    return model.to(device).eval(), meta


# --- where a training command writes --------------------------------------------------------


def output_dir(what: str, out: str | Path | None = None, ship: bool = False) -> Path:
    """The folder a training command writes to: ``out``, else the shipped folder with ``ship``, else a run folder.

    The default, ``data/runs/WHAT``, is git-ignored: only an explicit ``--ship``
    (or ``--out data/checkpoints``) touches what the course ships.
    """
    if out is not None and ship:
        raise ValueError("give --out or --ship, not both")
    if ship:
        return SHIPPED_DIR
    return Path(out) if out is not None else runs_dir() / what


def announce_replacements(folder: Path, names: list[str]) -> list[Path]:
    """Print (and return) what writing checkpoints ``names`` into ``folder`` will replace.

    A name is a checkpoint (its ``.safetensors`` and ``.json``) or a folder of one
    (``hf_gpt/``, a ``transformers`` model and its tokenizer).
    """
    replaced = []
    for name in names:
        whole = folder / name
        replaced += [whole] if whole.is_dir() else [p for p in _paths(whole) if p.exists()]
    for p in replaced:
        print(f"replacing {p}/" if p.is_dir() else f"replacing {p} ({p.stat().st_size:,} bytes)")
    return replaced
