"""python -m course_utils.train: tiny runs of every command, where they write, --ship, --max-minutes."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from course_utils import checkpoints, train
from course_utils.checkpoints import load_checkpoint, read_metadata
from course_utils.data import DataUnavailableError
from course_utils.files import sha256_of
from course_utils.gan import RECIPES as GAN_RECIPES
from course_utils.gan import Generator

# Tiny runs on one thread (the ``one_thread`` fixture); the gan command with its ``test`` recipe (a width-8 model,
# batches of 16): the files, cards and options are the same as the shipped recipe's, at a small fraction of the cost.
pytestmark = pytest.mark.usefixtures("one_thread")
GAN_BATCH = GAN_RECIPES["test"].batch_size


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    assert train.main(["classifier", "--epochs", "1", "--limit", "256", "--out", str(out)]) == 0
    gan = ["gan", "--recipe", "test", "--epochs", "1", "--limit", "256", "--out", str(out), "--classifier", str(out),
           "--curve-samples", "32", "--fid-samples", "48"]
    assert train.main(gan) == 0
    first = sha256_of(out / "cgan_generator.safetensors")[0]
    assert train.main(gan) == 0
    return out, first


@pytest.mark.slow
def test_training_commands_write_weights_and_cards(tiny_run):
    out, _ = tiny_run
    for name in ("fmnist_classifier", "cgan_generator", "fmnist_fid_reference"):
        assert (out / f"{name}.safetensors").exists() and (out / f"{name}.json").exists()
    clf = read_metadata(out / "fmnist_classifier")
    for key in ("architecture", "data", "training", "seconds", "hardware", "test_accuracy", "fid_fmnist_floor",
                "weights_sha256", "torch_version", "saved_at", "format_version"):
        assert key in clf, key
    assert clf["training"]["steps"] == 2 and clf["test_images"] == 256  # 256 images in batches of 128
    gen = read_metadata(out / "cgan_generator")
    for key in ("architecture", "data", "training", "seconds", "hardware", "fid_fmnist", "fid_curve", "history"):
        assert key in gen, key
    assert gen["training"]["steps"] == 256 // GAN_BATCH and gen["fid_fmnist"]["samples"] == 48
    assert gen["training"]["recipe"] == {**asdict(GAN_RECIPES["test"]), "steps": 256 // GAN_BATCH}
    assert gen["fid_curve"]["epoch"] == [0, 1] and len(gen["fid_curve"]["fid"]) == 2
    G, _ = load_checkpoint(out / "cgan_generator")
    assert isinstance(G, Generator) and G.config.num_classes == 10
    ref = read_metadata(out / "fmnist_fid_reference")
    assert ref["images"] == 256 and ref["source"] == "tensor"  # a subset is keyed as one, never as the full set


@pytest.mark.slow
def test_training_is_reproducible(tiny_run):
    out, first = tiny_run
    assert sha256_of(out / "cgan_generator.safetensors")[0] == first


def _shipped_digests() -> dict[str, str]:
    root = checkpoints.SHIPPED_DIR
    return {str(p.relative_to(root)): sha256_of(p)[0] for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_default_output_is_a_run_folder_never_the_shipped_one(tmp_path, monkeypatch):
    shipped = _shipped_digests()
    assert "fmnist_classifier.safetensors" in shipped
    monkeypatch.setattr(checkpoints, "runs_dir", lambda: tmp_path / "runs")
    assert train.main(["classifier", "--epochs", "1", "--limit", "128"]) == 0
    assert (tmp_path / "runs" / "classifier" / "fmnist_classifier.safetensors").exists()
    assert _shipped_digests() == shipped
    assert train.main(["classifier", "--out", str(checkpoints.SHIPPED_DIR)]) == 2  # refused without --ship
    assert _shipped_digests() == shipped


@pytest.mark.slow
def test_ship_writes_the_shipped_folder_and_says_what_it_replaces(tiny_run, tmp_path, monkeypatch, capsys):
    out, _ = tiny_run
    fake_shipped = tmp_path / "shipped"
    fake_shipped.mkdir()
    for name in ("fmnist_classifier", "fmnist_fid_reference"):
        for suffix in (".safetensors", ".json"):
            (fake_shipped / f"{name}{suffix}").write_bytes((out / f"{name}{suffix}").read_bytes())
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", fake_shipped)
    assert train.main(["classifier", "--epochs", "1", "--limit", "128", "--ship"]) == 0
    printed = capsys.readouterr().out
    assert f"replacing {fake_shipped / 'fmnist_classifier.safetensors'}" in printed
    assert read_metadata(fake_shipped / "fmnist_classifier")["test_images"] == 128


@pytest.mark.slow
def test_max_minutes_stops_at_the_first_epoch_boundary(tiny_run, tmp_path):
    out, _ = tiny_run
    run = tmp_path / "capped"
    capped = ["gan", "--recipe", "test", "--epochs", "3", "--max-minutes", "1e-9", "--limit", "256", "--out", str(run),
              "--classifier", str(out), "--curve-samples", "16", "--fid-samples", "16"]
    assert train.main(capped) == 0
    card = read_metadata(run / "cgan_generator")
    assert card["training"]["epochs"] == 1 and card["fid_curve"]["epoch"] == [0, 1]
    assert card["command"].startswith("python -m course_utils.train gan --recipe test --epochs 1")
    assert train.main(["classifier", "--epochs", "3", "--max-minutes", "1e-9", "--limit", "256",
                       "--out", str(run)]) == 0
    assert read_metadata(run / "fmnist_classifier")["training"]["epochs"] == 1


BAD_INPUT = [
    (["vae", "--epochs", "0"], "argument --epochs: 0 is not allowed: give a whole number of at least 1"),
    (["gpt", "--steps", "-5"], "argument --steps: -5 is not allowed: give a whole number of at least 1"),
    (["gan", "--max-minutes", "0"], "argument --max-minutes: 0 is not allowed: give a number of minutes above 0"),
    (["gan", "--max-minutes", "-1"], "argument --max-minutes: -1 is not allowed"),
    (["classifier", "--limit", "ten"], "argument --limit: 'ten' is not a whole number"),
    (["gpt", "--recipe", "huge"], "argument --recipe: invalid choice: 'huge' (gpt: ci, cpu, gpu, ship, test)"),
    (["hf-gpt", "--recipe", "huge"], "argument --recipe: invalid choice: 'huge' (hf-gpt: "),
    (["diffusion", "--epochs", "0"], "argument --epochs: 0 is not allowed: give a whole number of at least 1"),
    (["diffusion", "--recipe", "huge"], "argument --recipe: invalid choice: 'huge' (diffusion: ci, cpu, gpu, ship, "
                                        "test)"),
    (["diffusion", "--steps", "100"], "argument --steps: diffusion does not take it (only gpt, hf-gpt)"),
    (["diffusion", "--fid-samples", "10"], "argument --fid-samples: diffusion does not take it (only gan)"),
    (["diffusion", "--max-minutes", "0"], "argument --max-minutes: 0 is not allowed"),
    (["diffusion", "--limit", "-3"], "argument --limit: -3 is not allowed"),
    (["diffusion", "--bench"], "argument --bench: diffusion does not take it (only vae, gpt)"),
    (["dffusion"], "argument what: invalid choice: 'dffusion'"),
    (["classifier", "--steps", "5"], "argument --steps: classifier does not take it (only gpt, hf-gpt)"),
    (["gan", "--recipe", "huge"], "argument --recipe: invalid choice: 'huge' (gan: ci, cpu, gpu, ship, test)"),
    (["vae", "--recipe", "mlp"], "argument --recipe: invalid choice: 'mlp' (vae: ci, cpu, gpu, ship, test)"),
    (["classifier", "--recipe", "test"], "argument --recipe: invalid choice: 'test' (classifier: ci, cpu, gpu, ship)"),
    (["hf-gpt", "--epochs", "2"], "argument --epochs: hf-gpt does not take it (only classifier, gan, vae, diffusion)"),
    (["classifier", "--bench"], "argument --bench: classifier does not take it (only vae, gpt)"),
    (["vae", "--fid-samples", "10"], "argument --fid-samples: vae does not take it (only gan)"),
    (["vae", "--out", "a", "--ship"], "argument --ship: not allowed with argument --out"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_input_is_refused_in_one_line_with_status_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "runs_dir", lambda: tmp_path / "runs")
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "runs").exists()  # nothing written, nothing trained


def test_an_output_folder_inside_the_shipped_one_is_refused(capsys):
    shipped = _shipped_digests()
    assert train.main(["vae", "--out", str(checkpoints.SHIPPED_DIR / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "inside the shipped folder" in err and "--ship" in err
    assert _shipped_digests() == shipped and not (checkpoints.SHIPPED_DIR / "sub").exists()


def test_a_missing_data_file_is_one_line_with_status_2(capsys, tmp_path, monkeypatch):
    from course_utils import classifier

    def unavailable(*args, **kwargs):
        raise DataUnavailableError("fashion-mnist is not in the cache and cannot be downloaded offline")

    monkeypatch.setattr(classifier, "image_tensors", unavailable)
    monkeypatch.setattr(checkpoints, "runs_dir", lambda: tmp_path / "runs")
    assert train.main(["classifier", "--epochs", "1", "--limit", "64"]) == 2
    err = capsys.readouterr().err
    assert err == "error: fashion-mnist is not in the cache and cannot be downloaded offline\n"


@pytest.mark.slow
def test_the_command_refuses_zero_epochs_as_a_learner_types_it(tmp_path):
    import subprocess
    import sys

    from course_utils import REPO_ROOT

    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "course_utils.train", "vae", "--epochs", "0", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert "--epochs: 0 is not allowed" in proc.stderr and not out.exists()


def test_the_registry_names_each_command_and_what_it_writes():
    assert list(train.COMMANDS) == ["classifier", "gan", "vae", "diffusion", "gpt", "hf-gpt"]
    for what, command in train.COMMANDS.items():
        assert command.help and command.writes and set(command.options) <= set(train.SPECIFIC), what
        assert bool(command.recipes) == ("recipe" in command.options), what
    assert train.COMMANDS["gpt"].recipes == ("ci", "cpu", "gpu", "ship", "test")
    assert train.COMMANDS["diffusion"].recipes == ("ci", "cpu", "gpu", "ship", "test")
    assert train.COMMANDS["diffusion"].writes == ("ddpm_fmnist",)


def test_a_run_announces_what_it_replaces_file_or_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "vae_fmnist.json").write_text("{}")
    (tmp_path / "hf_gpt").mkdir()
    calls = []
    for what in ("vae", "hf-gpt"):
        command = train.COMMANDS[what]
        monkeypatch.setitem(train.COMMANDS, what, train.Command(command.help, lambda a, o: calls.append(o) or {},
                                                                command.writes, command.options, command.recipes))
        assert train.main([what, "--out", str(tmp_path)]) == 0
    assert calls == [tmp_path, tmp_path]
    out = capsys.readouterr().out
    assert f"replacing {tmp_path / 'vae_fmnist.json'} (2 bytes)" in out and f"replacing {tmp_path / 'hf_gpt'}/" in out

