"""Stop signals: SIGTERM / SIGUSR1 (SLURM's --signal=USR1@90) and Ctrl-C (SIGINT) ask the run to save
and exit with 75. A second Ctrl-C stops at once (KeyboardInterrupt), without saving.

Under torchrun a Ctrl-C at the terminal reaches each worker twice within milliseconds: from the
terminal (the whole process group) and from the agent, which passes the signal it got on to its
workers. So a second SIGINT counts only when it comes more than SECOND_CTRL_C_AFTER_S after the first."""
from __future__ import annotations

import os
import signal
import time

import torch
import torch.distributed as dist

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "stopped on request, rerun to continue"
SECOND_CTRL_C_AFTER_S = 2.0


class Preempted(SystemExit):
    def __init__(self):
        super().__init__(PREEMPTED_EXIT_CODE)


class StopSignal:
    """SIGTERM / SIGUSR1 / SIGINT set a flag; the loop finishes its step, saves and exits. A second
    SIGINT (the user pressing Ctrl-C again) raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested = False
        self._first_ctrl_c: float | None = None
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if signum == signal.SIGINT:
            now = time.monotonic()
            if self._first_ctrl_c is not None:
                if now - self._first_ctrl_c > SECOND_CTRL_C_AFTER_S:
                    raise KeyboardInterrupt
                return  # the same Ctrl-C, passed on by torchrun's agent
            self._first_ctrl_c = now
            # (a signal handler: one raw write, no logging machinery)
            os.write(2, b"\nCtrl-C: saving a checkpoint at the next step boundary, then stopping "
                        b"(press Ctrl-C again to stop at once, without saving).\n")
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
