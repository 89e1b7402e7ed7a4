"""course_utils.checkpoints: safetensors + JSON card, checksums and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_tensors,
    read_metadata,
    save_checkpoint,
    save_tensors,
)
from course_utils.models import FashionClassifier, Generator


def test_round_trip_rebuilds_the_model_from_its_card(tmp_path):
    G = Generator(z_dim=8, channels=8, num_classes=10)
    card = save_checkpoint(G, tmp_path / "gen", {"steps": 3})
    assert card == tmp_path / "gen.json" and (tmp_path / "gen.safetensors").exists()
    meta = read_metadata(tmp_path / "gen.safetensors")
    assert meta["steps"] == 3 and meta["architecture"]["class"] == "Generator"
    for key in ("weights_sha256", "torch_version", "saved_at", "num_parameters", "tensor_elements", "weights_bytes"):
        assert key in meta
    loaded, meta2 = load_checkpoint(tmp_path / "gen")
    assert meta2 == meta and not loaded.training
    for name, tensor in G.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_loading_into_a_given_model_or_factory(tmp_path):
    clf = FashionClassifier(channels=(4, 8, 8), hidden=16)
    save_checkpoint(clf, tmp_path / "clf")
    target = FashionClassifier(channels=(4, 8, 8), hidden=16)
    loaded, _ = load_checkpoint(tmp_path / "clf.safetensors", target)
    assert loaded is target and torch.equal(loaded.fc.weight, clf.fc.weight)
    built, _ = load_checkpoint(tmp_path / "clf", lambda arch: FashionClassifier(arch["config"]))
    assert torch.equal(built.head.bias, clf.head.bias)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.safetensors not found"):
        load_checkpoint(tmp_path / "nothing")
    save_checkpoint(Generator(z_dim=4, channels=4), tmp_path / "g")
    (tmp_path / "g.json").unlink()
    with pytest.raises(CheckpointError, match="card .*g.json not found"):
        load_checkpoint(tmp_path / "g")


def test_shape_mismatch_names_the_tensor(tmp_path):
    save_checkpoint(Generator(z_dim=8, channels=8), tmp_path / "g")
    with pytest.raises(CheckpointError, match=r"tensor 'net\.0\.weight' has shape"):
        load_checkpoint(tmp_path / "g", Generator(z_dim=16, channels=8))
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_checkpoint(tmp_path / "g", Generator(z_dim=8, channels=8, num_classes=10))


def test_checksum_mismatch_is_detected(tmp_path):
    save_checkpoint(Generator(z_dim=4, channels=4), tmp_path / "g")
    meta = json.loads((tmp_path / "g.json").read_text())
    meta["weights_sha256"] = "0" * 64
    (tmp_path / "g.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "g")
    load_checkpoint(tmp_path / "g", verify=False)


def test_save_tensors_for_plain_statistics(tmp_path):
    save_tensors({"mu": torch.arange(3.0)}, tmp_path / "stats", {"what": "test"})
    tensors, meta = load_tensors(tmp_path / "stats")
    assert torch.equal(tensors["mu"], torch.arange(3.0)) and meta["what"] == "test"
