"""Progress that reads well where the job runs: a tqdm bar on a terminal, and where stderr is a file
or a pipe (nohup, SLURM, CI) one plain log line every `every_s` seconds instead of a bar redrawn at
every step."""
from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("simple_ijepa")


class PlainProgress:
    """tqdm's update / set_postfix / close, written as 'desc: n/total (p%), r it/s, k=v ...' lines."""

    def __init__(self, total: int, initial: int = 0, desc: str = "", every_s: float = 30.0, unit: str = "it"):
        self.total, self.n, self.desc, self.every_s, self.unit = total, initial, desc, every_s, unit
        self.postfix: dict = {}
        self.t0 = self.t_last = time.perf_counter()
        self.n0 = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.perf_counter() - self.t_last >= self.every_s:
            self._line()

    def set_postfix(self, postfix: dict, refresh: bool = True) -> None:
        self.postfix = dict(postfix)

    def close(self) -> None:
        if self.n != self.n0:
            self._line()
            self.n0 = self.n  # a second close writes nothing

    def _line(self) -> None:
        now = time.perf_counter()
        rate = (self.n - self.n0) / max(now - self.t0, 1e-9)
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        log.info(f"{self.desc}: {self.n}/{self.total} ({100 * self.n / max(self.total, 1):.0f}%), "
                 f"{rate:.2f} {self.unit}/s{extra}")
        self.t_last = now


class Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, postfix: dict, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, initial: int = 0, enabled: bool = True, unit: str = "it",
             every_s: float = 30.0, leave: bool = True):
    """A bar on a terminal, plain lines every `every_s` seconds otherwise, nothing when not enabled."""
    if not enabled:
        return Silent()
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=leave)
    return PlainProgress(total, initial, desc, every_s, unit)
