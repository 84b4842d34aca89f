"""Run trials on this machine: one after another, or in a pool of worker processes.

Each trial is deterministic given its payload (seeded weights, seeded batch order), so
the pool returns the same numbers as the sequential loop, only sooner: results are
matched to payloads by index, whatever order they finish in. Workers are spawned (not
forked: torch and forked threads do not mix); how many CPU threads a trial uses is part
of its payload, so give the pool at most ``cores / threads`` workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

from ..errors import ConfigError
from .base import Job, OnResult, Payload


@dataclass
class LocalBackend:
    """``workers=1``: trials run in this process, in order; ``workers>1``: a process pool."""

    workers: int = 1
    name: str = field(default="local", init=False)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False)
    _depth: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")

    def __enter__(self) -> LocalBackend:
        self._depth += 1  # re-entrant: compare holds the pool open across its selections
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        return self._pool

    def map(self, job: Job, payloads: Sequence[Payload], on_result: OnResult | None = None) -> list[Payload]:
        results: list[Payload | None] = [None] * len(payloads)
        if self.workers == 1 or len(payloads) <= 1:
            for i, payload in enumerate(payloads):
                results[i] = job(payload)
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
            return results  # type: ignore[return-value]
        pool = self._get_pool()
        pending: dict[Future[Payload], int] = {pool.submit(job, p): i for i, p in enumerate(payloads)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()  # re-raises a worker's exception here
                    if on_result is not None:
                        on_result(i, results[i])  # type: ignore[arg-type]
        finally:
            for fut in pending:
                fut.cancel()
        return results  # type: ignore[return-value]
