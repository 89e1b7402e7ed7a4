"""Helpers for the notebooks of the generative-AI course.

Each module has one concern; the notebooks build a model step by step and
later notebooks import the finished one from here.

- ``runtime``: device, seeding, the ``COURSE_PROFILE`` switch (notebook 00).
- ``data``: the checksummed, offline-first data registry and loaders (00, 01).
- ``plotting``: image grids, curves, 2-D scatter and density plots.
- ``progress``: progress bars that go quiet in CI.
- ``toy``: 2-D toy data sets (01, 02).
- ``colab``: the Colab badge and set-up cell of every notebook.
- ``density``, ``exercises``: the models and exercise checkers of notebook 01.
- ``models``, ``metrics``, ``checkpoints``, ``train``: the GANs, FID-FMNIST,
  safetensors checkpoints and the training script of notebook 02.
"""

__version__ = "0.1.0"
