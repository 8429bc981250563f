"""Process-group setup purely from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE).

Plain `python run_ddp.py` runs as a single process without a process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def setup_distributed(timeout_minutes: float = 60.0) -> DistInfo:
    """nccl on CUDA, gloo on CPU; one CUDA device per local rank."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        timeout = timedelta(minutes=timeout_minutes)
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        if attempt != "0":
            kwargs.update(store=restart_store(rank, world_size, attempt, timeout), rank=rank, world_size=world_size)
        dist.init_process_group(backend, timeout=timeout, **kwargs)
    return DistInfo(rank, local_rank, world_size, device)


def restart_store(rank: int, world_size: int, attempt: str, timeout: timedelta) -> dist.Store:
    """The rendezvous store of workers that torchrun restarted (--max-restarts): torchrun's store at
    MASTER_ADDR:MASTER_PORT, under a prefix of its own for this attempt. Measured on torch 2.14 (CPU,
    gloo, --standalone): without it the restarted ranks read the dead attempt's addresses and fail
    to connect."""
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
                          is_master=not agent_hosts and rank == 0, timeout=timeout, multi_tenant=not agent_hosts)
    return dist.PrefixStore(f"simple_ijepa/attempt_{attempt}", store)


def check_replicas_agree(model: torch.nn.Module, info: DistInfo) -> float | None:
    """Fail loudly if DDP replicas diverged: compare a checksum of the weights across ranks.
    Returns the checksum (None in a single process)."""
    if not info.enabled:
        return None
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    sums = [torch.zeros_like(checksum) for _ in range(info.world_size)]
    dist.all_gather(sums, checksum)
    if len({float(x) for x in sums}) != 1:
        raise RuntimeError(f"Model replicas diverged across ranks: weight checksums {[float(x) for x in sums]}.")
    return float(checksum)


def cleanup_distributed(wait_for_all: bool = False) -> None:
    """Destroy the process group. wait_for_all (a run that finished on every rank): a barrier first, so
    that no rank tears gloo down while rank 0 still writes its files; twice in one CI run (torch 2.14,
    CPU) a rank that left first aborted in the teardown ("terminate called without an active exception").
    Never after an error or a stop signal, where a rank may be gone."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t


def global_batch_mean(x: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [1, ...]: the mean over the batches of all ranks together (weighted by their sizes),
    as one process holding the concatenated batch would compute it. Every rank must call it."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return x.mean(0, keepdim=True)
    total = torch.cat([x.sum(0).flatten().float(), x.new_full((1,), x.shape[0], dtype=torch.float32)])
    dist.all_reduce(total)
    return (total[:-1] / total[-1]).view(1, *x.shape[1:]).to(x.dtype)


def broadcast_object(obj, src: int = 0):
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj
