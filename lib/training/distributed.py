"""A process's place in a training run launched by ``torchrun`` (or alone)."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    """This process's place in a (possibly single-process) run."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device):
    """Join the process group when launched by torchrun; ``gloo`` on the CPU, ``nccl`` on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    place = Distributed(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(place.local_rank)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return place
