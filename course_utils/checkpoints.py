"""Save and load model weights as safetensors, with a JSON card beside them.

Taught in notebook 02 (the shipped generator and classifier); later notebooks
ship their checkpoints the same way.

A checkpoint ``name`` is two files:

- ``name.safetensors``: the tensors only. Loading it runs no code, unlike a
  pickled ``torch.save`` file, so a downloaded checkpoint cannot execute
  anything on your machine;
- ``name.json``: the metadata, a "model card": the architecture (enough to
  rebuild the model with :func:`course_utils.models.build_model`), the sha256
  of the weights file, the torch version, the date, and whatever the training
  script adds (data, steps, seconds, hardware, measured quality).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from course_utils.models import architecture, build_model

# The checkpoints the course ships, committed with the repository.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` for ``dir/name``, ``dir/name.safetensors`` or ``dir/name.json``."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``tensors`` to ``path.safetensors`` and ``metadata`` (plus checksum, versions, date) to ``path.json``.

    Returns the path of the ``.json`` card.
    """
    weights, card = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(weights))
    info = dict(metadata)
    info.update({
        "weights_file": weights.name,
        "weights_sha256": file_sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "num_tensors": len(tensors),
        "tensor_elements": int(sum(t.numel() for t in tensors.values())),  # parameters and buffers
        "torch_version": torch.__version__.split("+")[0],
        "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    card.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return card


def save_checkpoint(model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a course model's ``state_dict`` and a card with its ``architecture`` and ``metadata``.

    ``path`` is ``dir/name`` (a suffix is ignored). Returns the card's path.
    """
    info = {"architecture": architecture(model), "num_parameters": sum(p.numel() for p in model.parameters()),
            **(metadata or {})}
    return save_tensors(model.state_dict(), path, info)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON card of checkpoint ``path`` (``dir/name``, with or without a suffix)."""
    _, card = _paths(path)
    if not card.exists():
        raise CheckpointError(f"checkpoint card {card} not found (expected next to the .safetensors file)")
    return json.loads(card.read_text(encoding="utf-8"))


def load_tensors(path: str | Path, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and card of checkpoint ``path``, the weights' sha256 checked against the card."""
    weights, card = _paths(path)
    if not weights.exists():
        raise CheckpointError(
            f"checkpoint weights {weights} not found; train them (python -m course_utils.train …) "
            "or check out the repository's data/checkpoints/ folder"
        )
    meta = read_metadata(path)
    if verify and "weights_sha256" in meta:
        actual = file_sha256(weights)
        if actual != meta["weights_sha256"]:
            raise CheckpointError(
                f"{weights.name}: sha256 {actual[:12]}… does not match {meta['weights_sha256'][:12]}… "
                f"in {card.name}: the file is corrupt or was replaced (e.g. a Git LFS pointer)"
            )
    # safetensors: a plain tensor format, nothing is unpickled or executed.
    return load_file(str(weights)), meta


def load_checkpoint(
    path: str | Path, model: nn.Module | Callable[[dict[str, Any]], nn.Module] | None = None,
    device: torch.device | str = "cpu", verify: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load checkpoint ``path`` into a model; returns ``(model, metadata)`` with the model in eval mode.

    ``model`` is a module to fill, a factory called with the card's
    ``architecture`` dict, or None to rebuild the model from the card. A
    missing file, a checksum mismatch, or a tensor whose name or shape does not
    fit the model raises :class:`CheckpointError` naming the problem.
    """
    state, meta = load_tensors(path, verify=verify)
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
