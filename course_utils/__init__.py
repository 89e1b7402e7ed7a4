"""Helpers for the notebooks of the generative-AI course.

One module per topic a learner looks for; the notebooks build each idea in
cells, check it against the module, then import the module.

Topics
- ``toy``: 2-D toy data sets and the mode counts of the toy GAN (01, 02).
- ``density``: the Gaussian mixture and PCA / probabilistic PCA (01).
- ``text``: character vocabularies, bigram counts, sampling from logits (01, 04).
- ``gan``: the toy and DCGAN networks, the DCGAN training step, ``generate`` (02).
- ``classifier``: the Fashion-MNIST classifier behind FID-FMNIST (02).
- ``vae``: autoencoders, the ELBO, the convolutional VAE and its measurements (03).
- ``gpt``: a character GPT in one readable file, its training and torchrun (04).
- ``decoding``: greedy, beam search, sampling, repetition penalty (04, 05).
- ``hf``: byte-level BPE, a small GPT-2 with Hugging Face ``transformers`` (05).
- ``seq2seq``: a tiny encoder-decoder that translates dates (05).
- ``music``: Bach chorale melodies as tokens, a synthesiser, piano rolls (05).
- ``evaluation``: FID-FMNIST, KID, precision/recall, bootstrap intervals,
  nearest neighbours, and the text metrics (02, 04, 06).
- ``human_eval``: ratings files and their analysis: win rates, Bradley-Terry,
  agreement between raters (06).
- ``exercises``: the checker machinery and ``show_solution``; ``exercises.basics``, ``exercises.gan``…
  hold each notebook's checkers.

Shared parts
- ``runtime``: device, seeding, the ``COURSE_PROFILE`` switch (00).
- ``data``: the checksummed, offline-first data registry and loaders (00).
- ``checkpoints``: safetensors + JSON cards, the model registry, shipped vs run folders.
- ``plotting``, ``progress``, ``colab``: figures, progress bars, the Colab cells.
- ``widgets``: the latent explorer (03), the text playground (04), the rating widgets (06).
- ``workshop``: nbgitpuller links for a workshop JupyterHub.
- ``authoring``: the generated time tables, the rendered site.
- ``solutions``: the reference solutions of the exercises, shown on request (``exercises.show_solution``).
- ``train``: only the command line, ``python -m course_utils.train WHAT``.
"""

from pathlib import Path

__version__ = "0.2.0"

#: The course checkout (the folder holding ``pyproject.toml``, ``notebooks/`` and ``data/``).
REPO_ROOT = Path(__file__).resolve().parent.parent
