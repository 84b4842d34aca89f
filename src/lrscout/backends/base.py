"""What a backend is: a way to run many independent jobs and hand back their results.

Backends know nothing about learning rates or halving: ``select`` gives them a job
function and a list of JSON payloads (one per trial), and gets JSON results back in
payload order. ``on_result(index, result)`` is called in the calling process as each job
finishes, so finished trials can be saved at once (a killed run resumes from them).

A backend is a context manager: it acquires workers (a process pool, a Ray connection) on
entry and releases what it started on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

Payload = dict[str, Any]
Job = Callable[[Payload], Payload]
OnResult = Callable[[int, Payload], None]


class Backend(Protocol):
    name: str

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def map(self, job: Job, payloads: Sequence[Payload], on_result: OnResult | None = None) -> list[Payload]:
        """Run ``job(p)`` for every payload; results in payload order."""
        ...
