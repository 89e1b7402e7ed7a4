"""course_utils.gan: shapes, conditioning, initialisation, PacGAN packs, the training step, sampling."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils import gan
from course_utils.checkpoints import load_checkpoint, save_checkpoint
from course_utils.gan import Discriminator, Generator, ToyDiscriminator, ToyGenerator, dcgan_init, generate

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest


def test_generator_makes_28x28_images_in_tanh_range():
    torch.manual_seed(0)
    G = Generator(z_dim=8, channels=8)
    G.net[-2].bias.data.fill_(100.0)  # push the pre-activation far out: tanh must still bound it
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28)
    assert torch.allclose(x, torch.ones_like(x))


def test_discriminator_gives_one_logit_per_image():
    torch.manual_seed(0)
    D = Discriminator(channels=8)
    assert D(torch.rand(4, 1, 28, 28) * 2 - 1).shape == (4,)


def test_conditional_models_need_labels_and_use_them():
    torch.manual_seed(0)
    G = Generator(z_dim=8, channels=8, num_classes=10).eval()
    D = Discriminator(channels=8, num_classes=10).eval()
    z = torch.randn(3, 8)
    with pytest.raises(ValueError, match="pass labels"):
        G(z)
    with pytest.raises(ValueError, match="pass labels"):
        D(torch.zeros(3, 1, 28, 28))
    # the label enters as an embedding next to z: the same as an unconditional net fed [z, embed(y)]
    y = torch.tensor([0, 7, 7])
    plain = Generator(z_dim=8 + 10, channels=8).eval()
    plain.net.load_state_dict(G.net.state_dict())
    assert torch.allclose(G(z, y), plain(torch.cat([z, G.embed(y)], 1)), atol=1e-6)
    assert (G(z, y)[1] - G(z, y)[2]).abs().max() > 0  # same label, other noise
    assert D(G(z, y), torch.tensor([1, 2, 3])).shape == (3,)
    with pytest.raises(ValueError, match="unconditional"):
        Generator(z_dim=8, channels=8)(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="unconditional"):
        Discriminator(channels=8)(torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2]))


def test_dcgan_init_sets_small_weights():
    torch.manual_seed(0)
    G = Generator(z_dim=16, channels=16)
    G.apply(dcgan_init)
    conv = G.net[0].weight  # 82k weights: the sample std is within 1% of 0.02
    assert abs(conv.std().item() - 0.02) < 0.0005
    bn = G.net[1]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0


def test_dcgan_init_leaves_the_class_embeddings_alone():
    torch.manual_seed(0)
    G, D = Generator(z_dim=16, channels=16, num_classes=10), Discriminator(channels=16, num_classes=10)
    before = [G.embed.weight.clone(), D.embed.weight.clone()]
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    assert torch.equal(G.embed.weight, before[0]) and torch.equal(D.embed.weight, before[1])  # PyTorch's N(0, 1)
    assert abs(D.embed.weight.std().item() - 1) < 0.05  # 7,840 draws


def test_generate_is_seeded_batched_and_restores_train_mode():
    torch.manual_seed(0)
    G = Generator(z_dim=8, channels=8, num_classes=10)
    labels = gan.balanced_labels(25)
    assert labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    a = generate(G, 25, labels, rng=torch.Generator().manual_seed(0), batch_size=10)
    b = generate(G, 25, labels, rng=torch.Generator().manual_seed(0), batch_size=25)
    assert a.shape == (25, 1, 28, 28) and torch.allclose(a, b, atol=1e-6)
    assert G.training
    z = torch.randn(25, 8, generator=torch.Generator().manual_seed(0))
    G.eval()
    assert torch.allclose(a, G(z, labels), atol=1e-6)
    with pytest.raises(ValueError, match="labels has 3 entries"):
        generate(G, 5, torch.zeros(3, dtype=torch.long))


def test_pack_concatenates_consecutive_samples():
    x = torch.arange(8.0).reshape(4, 2)
    assert gan.pack(x, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert torch.equal(gan.pack(x, 1), x)
    with pytest.raises(ValueError, match="multiple of pack"):
        gan.pack(x[:3], 2)


def test_toy_models_and_pacgan_discriminator():
    torch.manual_seed(0)
    G, D = ToyGenerator(), ToyDiscriminator(pack=4)
    x = G(torch.randn(8, 2))
    assert x.shape == (8, 2) and D(x).shape == (2,)
    assert torch.allclose(D(x), D.net(gan.pack(x, 4)).squeeze(1))
    with pytest.raises(ValueError, match="multiple of pack"):
        D(torch.randn(6, 2))


def _manual_step(G, D, opt_g, opt_d, real, labels, real_label):
    """The DCGAN step written out, as notebook 02 shows it."""
    z = torch.randn(len(real), G.config.z_dim)
    fake = G(z, labels)
    d_real, d_fake = D(real, labels), D(fake.detach(), labels)
    loss_d = (nn.functional.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label))
              + nn.functional.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    d_gen = D(fake, labels)
    loss_g = nn.functional.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def test_gan_step_equals_the_step_written_out():
    torch.manual_seed(0)
    G, D = Generator(z_dim=8, channels=8, num_classes=10), Discriminator(channels=8, num_classes=10)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    opts = [torch.optim.Adam(m.parameters(), 1e-3, betas=(0.5, 0.999)) for m in (G, D, G2, D2)]
    real = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.arange(16) % 10
    torch.manual_seed(2)
    stats = gan.gan_step(G, D, opts[0], opts[1], real, labels, real_label=0.9)
    torch.manual_seed(2)
    loss_d, loss_g = _manual_step(G2, D2, opts[2], opts[3], real, labels, 0.9)
    assert stats["loss_d"] == pytest.approx(loss_d, rel=1e-6) and stats["loss_g"] == pytest.approx(loss_g, rel=1e-6)
    for a, b in zip(list(G.parameters()) + list(D.parameters()), list(G2.parameters()) + list(D2.parameters()),
                    strict=True):
        assert torch.allclose(a, b, atol=1e-7)


def test_gan_step_losses_at_a_known_point():
    """With D's last layer zeroed, D(x) = 1/2 everywhere: each BCE term is known in closed form."""
    torch.manual_seed(0)
    G, D = ToyGenerator(), ToyDiscriminator()
    nn.init.zeros_(D.net[-1].weight)
    nn.init.zeros_(D.net[-1].bias)
    opt_g, opt_d = (torch.optim.SGD(m.parameters(), lr=0.0) for m in (G, D))  # lr 0: nothing moves
    stats = gan.gan_step(G, D, opt_g, opt_d, torch.randn(64, 2), real_label=0.9)
    log2 = torch.log(torch.tensor(2.0)).item()
    # BCE(logit 0, target t) = log 2 for any target t: smoothing does not change it
    assert stats["loss_d"] == pytest.approx(2 * log2, rel=1e-6) and stats["loss_g"] == pytest.approx(log2, rel=1e-6)
    assert stats["d_real"] == 0.5 and stats["d_fake"] == 0.5


def test_registered_models_round_trip_through_a_checkpoint(tmp_path):
    for model in (Generator(z_dim=8, channels=8, num_classes=10), Discriminator(channels=4),
                  ToyGenerator(hidden=16), ToyDiscriminator(pack=2)):
        save_checkpoint(model, tmp_path / "m")
        rebuilt, meta = load_checkpoint(tmp_path / "m")
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        assert meta["architecture"]["module"] == "course_utils.gan"
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, rebuilt.state_dict()[name])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (make test-gpu)")
def test_cuda_generation_and_checkpoint_match_the_cpu(tmp_path):
    torch.manual_seed(0)
    G = Generator(z_dim=16, channels=16, num_classes=10)
    G.apply(dcgan_init)
    save_checkpoint(G, tmp_path / "g")
    on_gpu, _ = load_checkpoint(tmp_path / "g", device="cuda")
    assert next(on_gpu.parameters()).device.type == "cuda"
    labels = gan.balanced_labels(64)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # TF32 would round to 10 mantissa bits; compare float32 with float32
    try:
        cpu = generate(G.eval(), 64, labels, rng=torch.Generator().manual_seed(3))
        gpu = generate(on_gpu, 64, labels, rng=torch.Generator().manual_seed(3))
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert gpu.device.type == "cpu" and gpu.shape == cpu.shape
    # The same noise (drawn on the CPU) and the same weights: only the order of float32 sums differs.
    # The longest sum has at most about 1,100 terms (input channels x kernel taps); its worst-case rounding
    # is n x 2^-24 ~ 7e-5 of the terms' magnitudes, so 5e-4 on tanh outputs in [-1, 1] is a safe bound.
    assert (cpu - gpu).abs().max().item() < 5e-4


def test_configs_refuse_bad_sizes():
    with pytest.raises(ValueError, match="GANConfig.channels must be an int >= 1"):
        Generator(channels=0)
    with pytest.raises(ValueError, match="ToyConfig.pack must be an int >= 1"):
        ToyDiscriminator(pack=0)
    assert Discriminator(num_classes=0).embed is None  # zero classes is the plain DCGAN
