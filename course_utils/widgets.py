"""Interactive widgets for JupyterLab and Colab (ipywidgets).

Each widget keeps what it computes in a plain method (``update``/``render``)
that takes the control values and returns what is drawn, so the logic is tested
without a browser; the ipywidgets controls only call it. In a saved notebook
or under nbval a widget shows as its text fallback; the browser test of the
workshop kit drives a live kernel.

Sections: the latent explorer of notebook 03 (VAE), the text playground of
notebook 04 (transformers), the rating widgets of notebook 06 (evaluation).
"""

from __future__ import annotations

# --- notebook 03: the latent explorer -----------------------------------------------------------


# --- notebook 04: the text playground -----------------------------------------------------------


# --- notebook 06: rating widgets ------------------------------------------------------------------
