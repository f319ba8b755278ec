"""Multi-GPU and multi-node training with torch.distributed (launched by ``torchrun``).

``torchrun --nproc_per_node 4 -m ganenc train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; each process then trains on its own slice of
every batch, gradients are averaged by DDP, and only rank 0 writes files.
On machines without GPUs the ``gloo`` backend is used (also in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import number_from_environment
from ..devices import resolve_device


def _environment_count(name: str, default: int) -> int:
    """A whole number torchrun puts in the environment (``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return number_from_environment(
        name, default, int, "a whole number (torchrun sets it)", "0 or more", lambda n: n < 0
    )


@dataclass
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: Any = None
    initialised: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> DistributedContext:
        # one check for every process count: --device cuda without a GPU is an error, not the CPU
        chosen = resolve_device(device)
        world_size = _environment_count("WORLD_SIZE", 1)
        if world_size <= 1:
            return cls(device=chosen)
        import torch
        import torch.distributed as dist

        local_rank = _environment_count("LOCAL_RANK", 0)
        use_cuda = chosen.type == "cuda"
        if use_cuda:  # each process takes the GPU of its local rank
            torch.cuda.set_device(local_rank)
            chosen = torch.device("cuda", local_rank)
        else:
            chosen = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        return cls(dist.get_rank(), local_rank, world_size, chosen, True)

    def wrap(self, module: Any) -> Any:
        if self.world_size <= 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.initialised = False
