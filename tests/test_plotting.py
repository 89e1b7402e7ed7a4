"""course_utils.plotting: every helper builds a figure with the right axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import plotting

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_tiles_images_in_rows_with_white_padding():
    ax = plotting.image_grid(torch.zeros(10, 1, 28, 28), nrow=4)
    shown = ax.images[0].get_array()
    assert shown.shape == (3 * 30 + 2, 4 * 30 + 2)  # 3 rows of 4, 2 pixels of padding around each image
    assert shown[0, 0] == 1.0 and shown[2, 2] == 0.0  # padding, then the first image
    assert shown[-3, -3] == 1.0  # the two empty places of the last row stay white


def test_image_grid_one_axes_and_value_range():
    ax = plotting.image_grid(torch.full((6, 28, 28), -1.0), nrow=3, value_range=(-1, 1), title="t")
    assert len(ax.figure.axes) == 1 and ax.get_title() == "t"
    shown = ax.images[0].get_array()
    assert shown.min() == 0.0 and shown[2, 2] == 0.0  # -1 maps to black


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        plotting.image_grid(torch.zeros(2, 5, 28, 28))


def test_plot_curves_one_line_per_curve_with_steps():
    ax = plotting.plot_curves({"G": [3, 2, 1, 1], "D": [1, 1, 1, 1]}, steps=[0, 10, 20, 30], smooth=2)
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_xdata()) == [10, 20, 30]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["G", "D"]


def test_scatter_and_density_share_an_axes():
    fig, axes = plt.subplots(1, 2)
    plotting.density_2d(lambda p: -0.5 * (p**2).sum(1), (-2, 2), (-2, 2), ax=axes[0], resolution=20)
    plotting.scatter_2d(np.random.default_rng(0).normal(size=(50, 2)), ax=axes[0], label="data")
    plotting.scatter_2d(torch.randn(50, 2, generator=torch.Generator().manual_seed(0)), ax=axes[1])
    assert len(fig.axes) == 2 and len(axes[0].collections) >= 2
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plotting.scatter_2d(torch.randn(5, 3))


def test_roc_curves_one_line_per_score_plus_chance():
    normal, anomalous = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.5, 3.0])
    ax = plotting.roc_curves({"good": (normal, anomalous), "reversed": (-normal, -anomalous)}, title="t")
    assert len(ax.lines) == 3 and ax.get_title() == "t"  # two scores and the chance diagonal
    fpr, tpr = ax.lines[0].get_data()
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # the trapezoid rule
    assert area == pytest.approx(5 / 6)  # 5 of the 6 (normal, anomalous) pairs ranked right
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["good: AUROC 0.833", "reversed: AUROC 0.167"]


def test_box_chain_draws_one_arrow_per_link_and_the_input_from_below():
    ax = plotting.box_chain(["a", "b", "c"], below=("noise", 1))
    boxes = [t for t in ax.texts if t.get_text()]
    arrows = [t for t in ax.texts if not t.get_text()]
    assert [t.get_text() for t in boxes] == ["a", "b", "c", "noise"]
    assert len(arrows) == 3  # a -> b, b -> c, noise -> b
    assert arrows[-1].xycoords is boxes[1] and arrows[-1].anncoords is boxes[3]  # into b, from noise
    assert boxes[3].get_position()[1] < boxes[1].get_position()[1]  # noise sits below
    assert not ax.axison


def test_loss_terms_two_axes_raw_start_test_points_and_cut_axis():
    train = {"recon": [100.0 - i for i in range(40)], "kl": [0.1 * i for i in range(40)]}
    test = {"epoch": [1, 2], "recon": [70.0, 65.0], "kl": [3.0, 3.5]}
    recon_ax, kl_ax = plotting.loss_terms(train, test, "t", steps_per_epoch=20, smooth=5, recon_top=90)
    assert recon_ax.get_title() == "t: reconstruction" and kl_ax.get_title() == "t: KL"
    assert len(recon_ax.lines) == 3  # smoothed, raw start, test points
    assert recon_ax.lines[0].get_xdata()[-1] == 2.0 and list(recon_ax.lines[2].get_ydata()) == [70.0, 65.0]
    assert recon_ax.get_ylim()[1] == 90 and kl_ax.get_ylim()[1] < 90
    per_epoch = plotting.loss_terms({"recon": [3.0, 2.0], "kl": [1.0, 1.5]}, None, "e", steps_per_epoch=1)
    assert len(per_epoch[0].lines) == 1  # no raw start, no test points
