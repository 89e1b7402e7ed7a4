"""Data-parallel training under ``torchrun``: one process per GPU (or CPU), the gradients averaged (notebook 05).

Notebook 05, section 7 explains the idea; ``python -m course_utils.train gpt``
runs this way when PyTorch's launcher starts it (README, "Training the bigger
GPT on several GPUs"). The launcher sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` in every process; :func:`setup` reads them and starts the process
group (NCCL on GPUs, gloo on CPUs), :func:`wrap` puts the model in PyTorch's
``DistributedDataParallel`` (which averages the gradients during the backward
pass), and the small collectives below keep the processes in step: the loss of
the global batch (:func:`mean`), one decision to stop (:func:`maximum`), one sum
over the shards of an evaluation (:func:`all_sum`), one figure measured by the
first process (:func:`from_first`). Call them only in a data-parallel run
(``world > 1``): every process must make the same calls in the same order.
Shared: no topic module is imported here.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from course_utils.runtime import get_device


def setup() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; under ``torchrun`` the process group is started (NCCL on GPUs, gloo else).

    Outside ``torchrun`` (no ``WORLD_SIZE``, or 1) nothing is started: ``(0, 1, get_device())``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, get_device()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)  # one GPU per process on this machine
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def wrap(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """``model`` inside ``DistributedDataParallel``: its backward pass all-reduces the gradients to their mean."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean(value: float, device: torch.device) -> float:
    """The mean of ``value`` over the processes (each process's loss on its slice -> the global batch's loss)."""
    share = torch.tensor(value / dist.get_world_size(), device=device)
    dist.all_reduce(share)
    return share.item()


def maximum(value: float, device: torch.device) -> float:
    """The largest ``value`` of any process (a stop flag: one process out of time stops them all)."""
    largest = torch.tensor(value, device=device)
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    return largest.item()


def all_sum(total: torch.Tensor) -> torch.Tensor:
    """``total`` summed over the processes, in place (an evaluation's sums over each process's shard)."""
    dist.all_reduce(total)
    return total


def from_first(value: float, device: torch.device) -> float:
    """The first process's ``value`` in every process (a speed measured once, so every process plans alike)."""
    shared = torch.tensor([value], dtype=torch.float64, device=device)  # NCCL sends only tensors on the GPU
    dist.broadcast(shared, src=0)
    return float(shared.item())


def finish() -> None:
    """Wait for every process, then close the process group."""
    dist.barrier()
    dist.destroy_process_group()
