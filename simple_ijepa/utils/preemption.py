"""Stop signals: SIGTERM / SIGUSR1 (SLURM's --signal=USR1@90) ask the run to save and exit with 75."""
from __future__ import annotations

import signal

import torch
import torch.distributed as dist

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "stopped on request, rerun to continue"


class Preempted(SystemExit):
    def __init__(self):
        super().__init__(PREEMPTED_EXIT_CODE)


class StopSignal:
    """SIGTERM / SIGUSR1 set a flag; the loop finishes its step, saves and exits."""

    def __init__(self):
        self.requested = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.requested = True

    def agreed(self, device: torch.device) -> bool:
        """True on every rank if any rank got a stop signal (one tiny all-reduce)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.requested = bool(flag.item())
        return self.requested

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
