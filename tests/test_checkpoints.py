"""course_utils.checkpoints: safetensors + JSON card, the registry, checksums, atomic writes, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import checkpoints
from course_utils.checkpoints import (
    CheckpointError,
    architecture,
    build_model,
    load_checkpoint,
    load_tensors,
    read_metadata,
    save_checkpoint,
    save_tensors,
)
from course_utils.classifier import FashionClassifier
from course_utils.gan import Generator

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


def test_round_trip_rebuilds_the_model_from_its_card(tmp_path):
    torch.manual_seed(0)
    G = Generator(z_dim=8, channels=8, num_classes=10)
    card = save_checkpoint(G, tmp_path / "gen", {"steps": 3})
    assert card == tmp_path / "gen.json" and (tmp_path / "gen.safetensors").exists()
    meta = read_metadata(tmp_path / "gen.safetensors")
    assert meta["steps"] == 3 and meta["format_version"] == checkpoints.CARD_FORMAT
    assert meta["architecture"] == {"class": "Generator", "module": "course_utils.gan",
                                    "config": {"z_dim": 8, "channels": 8, "num_classes": 10, "embed_dim": 10}}
    assert meta["num_parameters"] == sum(p.numel() for p in G.parameters())
    assert meta["weights_bytes"] == (tmp_path / "gen.safetensors").stat().st_size
    loaded, meta2 = load_checkpoint(tmp_path / "gen")
    assert meta2 == meta and not loaded.training
    for name, tensor in G.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_finish_run_saves_prints_and_returns_the_card(tmp_path, capsys):
    G = Generator(z_dim=8, channels=8, num_classes=0)
    card = {"task": "test"}
    assert checkpoints.finish_run(G, tmp_path / "gen", card, "generator: done") is card
    assert capsys.readouterr().out == f"generator: done -> {tmp_path}\n"
    assert read_metadata(tmp_path / "gen")["task"] == "test"


def test_loading_into_a_given_model_or_factory(tmp_path):
    torch.manual_seed(0)
    clf = FashionClassifier(channels=(4, 8, 8), hidden=16)
    save_checkpoint(clf, tmp_path / "clf")
    target = FashionClassifier(channels=(4, 8, 8), hidden=16)
    loaded, _ = load_checkpoint(tmp_path / "clf.safetensors", target)
    assert loaded is target and torch.equal(loaded.fc.weight, clf.fc.weight)
    built, _ = load_checkpoint(tmp_path / "clf", lambda arch: FashionClassifier(arch["config"]))
    assert torch.equal(built.head.bias, clf.head.bias)


def test_registry_rebuilds_by_name_and_refuses_strangers():
    arch = architecture(FashionClassifier(channels=(4, 8, 8)))
    assert arch["module"] == "course_utils.classifier" and arch["config"]["channels"] == [4, 8, 8]
    assert build_model(arch).config.channels == (4, 8, 8)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"class": "ResNet", "module": "torchvision.models", "config": {}})
    with pytest.raises(TypeError, match="not a registered course model"):
        architecture(torch.nn.Linear(2, 2))

    @checkpoints.register_model
    class Tiny(torch.nn.Module):  # noqa: B903
        def __init__(self, config=None):
            super().__init__()
            self.config = config

    try:
        with pytest.raises(ValueError, match="already registered"):
            checkpoints.register_model(type("Tiny", (torch.nn.Module,), {}))
    finally:
        del checkpoints.MODELS["Tiny"]


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


def _edit_card(path, **changes):
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def test_checksum_mismatch_is_detected(tmp_path):
    save_checkpoint(Generator(z_dim=4, channels=4), tmp_path / "g")
    _edit_card(tmp_path / "g.json", weights_sha256="0" * 64)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "g")


def test_cards_without_a_checksum_or_of_another_format_are_refused(tmp_path):
    save_checkpoint(Generator(z_dim=4, channels=4), tmp_path / "g")
    _edit_card(tmp_path / "g.json", weights_sha256=None)
    with pytest.raises(CheckpointError, match="no weights checksum"):
        load_checkpoint(tmp_path / "g")
    save_checkpoint(Generator(z_dim=4, channels=4), tmp_path / "h")
    _edit_card(tmp_path / "h.json", format_version=None)
    with pytest.raises(CheckpointError, match="card format None"):
        read_metadata(tmp_path / "h")
    _edit_card(tmp_path / "h.json", format_version=checkpoints.CARD_FORMAT + 1)
    with pytest.raises(CheckpointError, match="update course_utils"):
        load_tensors(tmp_path / "h")


def test_writes_are_atomic(tmp_path, monkeypatch):
    save_tensors({"mu": torch.arange(3.0)}, tmp_path / "stats", {"what": "first"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_tensors({"mu": torch.arange(5.0)}, tmp_path / "stats", {"what": "second"})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # untouched, no .part left
    tensors, meta = load_tensors(tmp_path / "stats")
    assert torch.equal(tensors["mu"], torch.arange(3.0)) and meta["what"] == "first"


def test_output_dir_defaults_to_a_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert checkpoints.output_dir("gan") == tmp_path / "runs" / "gan"
    assert checkpoints.output_dir("gan", ship=True) == checkpoints.SHIPPED_DIR
    assert checkpoints.output_dir("gan", out=tmp_path / "x") == tmp_path / "x"
    with pytest.raises(ValueError, match="not both"):
        checkpoints.output_dir("gan", out=tmp_path, ship=True)
    save_tensors({"a": torch.zeros(1)}, tmp_path / "x" / "stats", {})
    replaced = checkpoints.announce_replacements(tmp_path / "x", ["stats", "absent"])
    assert [p.name for p in replaced] == ["stats.safetensors", "stats.json"]
    assert "replacing" in capsys.readouterr().out
