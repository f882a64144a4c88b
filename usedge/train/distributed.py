"""Multi-process training on torch.distributed (DDP), launched by ``torchrun``; a no-op in one process.

``torchrun --nproc_per_node 2 -m usedge.cli.main train ...`` (or ``distill``) sets RANK / WORLD_SIZE /
LOCAL_RANK; :meth:`DistContext.from_env` then joins the group (gloo on CPU, NCCL on CUDA). Every rank draws
the same task each step (same seed) and its own slice of the same global batch
(:class:`ShardedBatchSampler`), so N ranks with batch B/N see exactly the samples one process with batch B
would. Only rank 0 evaluates and writes files.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from usedge.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, device: torch.device) -> DistContext:
        """Join the process group torchrun describes in the environment (one process: no group)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, local)

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process: cuda -> cuda:<local rank>."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.enabled else device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = None
        if next(model.parameters()).is_cuda:  # batch statistics over all GPUs (CPU/gloo has no SyncBatchNorm)
            ids = [self.local_rank]
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # single-task steps leave the other heads without gradients
        return DDP(model, device_ids=ids, find_unused_parameters=True)

    def per_rank_batch(self, batch_size: int) -> int:
        if batch_size % self.world:
            raise ConfigError(f"batch size {batch_size} does not split evenly over {self.world} processes.",
                              fix=f"use a global --batch-size that is a multiple of {self.world}.")
        return batch_size // self.world

    def mean(self, value: float) -> float:
        """The mean of a scalar over ranks (identity in one process)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def mean_many(self, values: list[float]) -> list[float]:
        """Element-wise means over ranks of a list of scalars, in one all-reduce (identity in one process)."""
        if not self.enabled or not values:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Batches of indices: each pass is a seeded permutation shared by all ranks, cut into global batches of
    ``batch_size``; rank r takes items r, r + world, ... of each global batch. Drops the last partial batch."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1, seed: int = 0) -> None:
        batch = min(batch_size, n)
        batch -= batch % world
        if batch < 1:
            raise ConfigError(f"{n} sample(s) cannot fill a batch on each of {world} processes.",
                              fix="add samples or run fewer processes.")
        self.n, self.batch = n, batch
        self.rank, self.world = rank, world
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.rng.permutation(self.n)
        for start in range(0, self.n - self.batch + 1, self.batch):
            yield perm[start:start + self.batch][self.rank::self.world].tolist()

    def __len__(self) -> int:
        return max(1, self.n // self.batch)
