"""Helpers for the notebooks of the generative-AI course.

One module per topic a learner looks for; the notebooks build each idea in
cells, check it against the module, then import the module.

Topics
- ``toy``: 2-D toy data sets and the mode counts of the toy GAN (01, 02).
- ``density``: the Gaussian mixture and PCA / probabilistic PCA (01).
- ``text``: character vocabularies, bigram counts, sampling from logits, and the text
  metrics: distinct-n, repetition, copied spans, known words (01, 05, 07).
- ``gan``: the toy and DCGAN networks, the DCGAN training step, ``generate`` (02).
- ``classifier``: the Fashion-MNIST classifier behind FID-FMNIST (02).
- ``vae``: autoencoders, the ELBO, the convolutional VAE, its training and its measurements (03).
- ``anomaly``: anomaly scores from a VAE's likelihood, the PNG complexity correction, AUROC (03).
- ``diffusion``: noise schedules, the U-Net, the DDPM and DDIM steps, guidance, the latent denoiser (04, diffusion;
  its notebook joins the series with the renumbering of issue 22).
- ``diffusion_training``: the diffusion recipes, the training loop, ``train diffusion`` and latent diffusion (04).
- ``gpt``: a character GPT, the model only, in one readable file like nanoGPT's ``model.py`` (05).
- ``gpt_training``: the char GPT's data, recipes and training loop, and the shipped model (05).
- ``distributed``: data-parallel training under ``torchrun`` (05).
- ``benchmarks``: the speed benchmarks, ``train vae --bench`` and ``train gpt --bench`` (03, 05).
- ``decoding``: greedy, beam search, sampling, repetition penalty (05, 06).
- ``bpe``: the byte-level BPE tokenizer, trained with ``tokenizers`` (06).
- ``hf``: a small GPT-2 with Hugging Face ``transformers``: train, save, load (06).
- ``hub``: the Hugging Face Hub or not, the GPT-3 snippet corrected, a chat summariser (06).
- ``seq2seq``: a tiny encoder-decoder that translates dates (06).
- ``summaries``: generated match reports with reference headlines, for summarisation with every fact known (06).
- ``music``: Bach chorale melodies as tokens, a synthesiser, piano rolls (06).
- ``evaluation``: FID-FMNIST, KID, precision/recall, bootstrap intervals,
  nearest neighbours (02, 07).
- ``reference_stats``: FID-FMNIST's reference statistics, cached on disk (02, 03, 07).
- ``human_eval``: ratings files and their analysis: win rates, Bradley-Terry,
  agreement between raters (07).
- ``exercises``: the checker machinery and ``show_solution``; ``exercises.basics``, ``exercises.gan``…
  hold each notebook's checkers.

Shared parts
- ``runtime``: device, seeding, the ``COURSE_PROFILE`` switch, the notebooks' test environment (00).
- ``data``: the checksummed, offline-first data registry, ``fetch`` and ``status`` (00).
- ``datasets``: the loaders: torchvision's image sets, whole splits as tensors, batches, the texts (00, 01).
- ``bundle``: every data file and shipped checkpoint in one verified archive (workshops).
- ``checkpoints``: safetensors + JSON cards, the model registry, shipped vs run folders.
- ``configs``: model and training configs built from dicts and checked field by field.
- ``files``: files written whole or not at all, and their sha256.
- ``training``: what every training loop shares: evaluation mode, the learning-rate schedule.
- ``plotting``, ``progress``, ``colab``: figures, progress bars, the Colab cells.
- ``widgets``: the latent explorer (03), the text playground (05), the rating widgets (07).
- ``workshop``: nbgitpuller links for a workshop JupyterHub.
- ``cli``: what every ``python -m course_utils.…`` command shares: bad input refused in one line, status 2.
- ``authoring``: the generated time tables, the rendered site.
- ``lesson_plan``: a notebook's planned teaching time from its words, cells and exercises; core and optional sections.
- ``solutions``: the reference solutions of the exercises, shown on request (``exercises.show_solution``).
- ``train``: only the command line, ``python -m course_utils.train WHAT``: an explicit registry of what it trains.
"""

from pathlib import Path

__version__ = "0.2.0"

#: The course checkout (the folder holding ``pyproject.toml``, ``notebooks/`` and ``data/``).
REPO_ROOT = Path(__file__).resolve().parent.parent
