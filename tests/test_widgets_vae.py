"""course_utils.widgets.LatentExplorer (notebook 03): the update function is plain and tested directly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.widgets import LatentExplorer

W = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))


def decode(z: torch.Tensor) -> torch.Tensor:
    """A known decoder: a linear map of a 3-D code to a 4x4 image, squashed into [0, 1]."""
    return torch.sigmoid(z @ W).view(-1, 1, 4, 4)


def test_render_decodes_centre_plus_slider_values_along_the_directions():
    centre = torch.tensor([0.5, -1.0, 2.0])
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    explorer = LatentExplorer(decode, centre, directions)
    z = centre + 0.3 * directions[0] - 1.5 * directions[1]
    assert torch.allclose(explorer.latent(0.3, -1.5), z[None])
    assert np.allclose(explorer.render(0.3, -1.5), decode(z[None])[0, 0].numpy(), atol=1e-7)
    assert torch.allclose(explorer.latent(10.0, -10.0), (centre + 3 * directions[0] - 3 * directions[1])[None])
    with pytest.raises(ValueError, match="need 2 slider values"):
        explorer.render(0.0)


def test_default_directions_are_the_axes():
    explorer = LatentExplorer(decode, torch.zeros(3))
    assert explorer.k == 3 and torch.equal(explorer.latent(1.0, 2.0, -1.0), torch.tensor([[1.0, 2.0, -1.0]]))


def test_from_codes_uses_the_principal_directions_scaled_to_one_standard_deviation():
    g = torch.Generator().manual_seed(1)
    codes = torch.randn(4000, 3, generator=g) * torch.tensor([3.0, 1.0, 0.2]) + torch.tensor([1.0, 2.0, 3.0])
    explorer = LatentExplorer.from_codes(decode, codes, k=2)
    # 4,000 draws: the sample mean is within 0.15 of the true one and the first direction is the x axis
    # with length close to its standard deviation 3 (sample std within 5%)
    assert torch.allclose(explorer.centre, torch.tensor([1.0, 2.0, 3.0]), atol=0.15)
    first = explorer.directions[0]
    assert abs(first[0].abs().item() - 3.0) < 0.15 and first[1:].abs().max() < 0.15
    assert abs(explorer.directions[1].norm().item() - 1.0) < 0.05
    with pytest.raises(ValueError, match="k between 1 and d"):
        LatentExplorer.from_codes(decode, codes, k=4)


def test_png_is_the_rendered_image_enlarged():
    explorer = LatentExplorer(decode, torch.zeros(3), scale=5)
    image = np.array(Image.open(io.BytesIO(explorer.png(0.5, 0.0, -0.5))))
    assert image.shape == (20, 20)
    expected = np.round(explorer.render(0.5, 0.0, -0.5) * 255).astype(np.uint8)
    assert np.array_equal(image[::5, ::5], expected) and np.array_equal(image[4::5, 4::5], expected)


def test_widget_redraws_when_a_slider_moves():
    pytest.importorskip("ipywidgets")
    explorer = LatentExplorer(decode, torch.zeros(3))
    box = explorer.widget(names=["a", "b", "c"])
    assert [s.description for s in box.sliders] == ["a", "b", "c"]
    assert box.image.value == explorer.png(0.0, 0.0, 0.0)
    box.sliders[1].value = 1.2
    assert box.image.value == explorer.png(0.0, 1.2, 0.0) != explorer.png(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="need 3 slider names"):
        explorer.widget(names=["a"])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"directions must be \[k, 3\]"):
        LatentExplorer(decode, torch.zeros(3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="limit must be > 0"):
        LatentExplorer(decode, torch.zeros(3), limit=0)
    with pytest.raises(ValueError, match=r"decode must return \[1, 1, H, W\]"):
        LatentExplorer(lambda z: z, torch.zeros(3)).render(0.0, 0.0, 0.0)
