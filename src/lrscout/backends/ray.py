"""Run trials as Ray Tune trials: on this machine, or on a cluster with ``address``.

Each rung of a selection is one ``Tuner.fit()``: every trial of the rung is a Tune trial
(``grid_search`` over the payload indices, one CPU each by default), so the rung runs as
wide as the cluster is. The promotions between rungs are lrscout's own synchronous
successive halving (:mod:`lrscout.selection.halving`), not Tune's ASHA: ASHA promotes a trial
as soon as it beats the trials that happen to have reported before it, so its choice
depends on the order in which trials finish and differs from run to run and from the
local backend. Waiting for a rung to finish costs little here, because the trials of a
rung have the same length; in return the Ray backend chooses exactly what the local one
chooses for the same seed.

Results stream back through a Tune callback in the driver process as each trial reports,
so a killed selection keeps every trial that finished. Checkpoints for continued trials
are written to the selection's directory: on a multi-node cluster put ``--out`` on
storage every node can reach, or promoted trials retrain their first epochs (the same
numbers, at more cost). Workers need lrscout importable (same environment, or a Ray
``runtime_env``).

Ray is an optional extra: ``pip install 'lrscout[ray]'``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, LrscoutError, require
from .base import Job, OnResult, Payload

log = logging.getLogger(__name__)


def _trainable(config: dict[str, Any], job: Job, payloads: Sequence[Payload]) -> None:
    from ray import tune

    index = int(config["index"])
    result = job(payloads[index])
    tune.report({"index": index, "result_json": json.dumps(result, allow_nan=False)})


@dataclass
class RayBackend:
    """Trials as Ray Tune trials; ``address=None`` starts (and later stops) a local Ray.

    ``num_cpus`` caps a local Ray started here (tests use 2); ``cpus_per_trial`` and
    ``gpus_per_trial`` are each trial's resource request.
    """

    address: str | None = None
    num_cpus: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    name: str = field(default="ray", init=False)
    _started: bool = field(default=False, init=False, repr=False)
    _storage: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)
    _rungs: int = field(default=0, init=False, repr=False)
    _depth: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ConfigError(f"need cpus_per_trial > 0 and gpus_per_trial >= 0, got "
                              f"{self.cpus_per_trial}, {self.gpus_per_trial}")

    def __enter__(self) -> RayBackend:
        self._depth += 1  # re-entrant: compare holds Ray open across its selections
        if self._depth > 1:
            return self
        ray: Any = require("ray", "ray")
        require("ray.tune", "ray")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING}
            if self.address is not None:
                kwargs["address"] = self.address
            elif self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
            self._started = True
        self._storage = tempfile.TemporaryDirectory(prefix="lrscout-ray-")
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        if self._storage is not None:
            self._storage.cleanup()
            self._storage = None
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def map(self, job: Job, payloads: Sequence[Payload], on_result: OnResult | None = None) -> list[Payload]:
        if self._storage is None:
            raise LrscoutError("use the Ray backend inside a 'with' block")
        if not payloads:
            return []
        import os

        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new output engine prints tables to stdout
        from ray import tune

        results: list[Payload | None] = [None] * len(payloads)

        def take(metrics: dict[str, Any]) -> None:
            """Keep a trial's reported result the first time it is seen."""
            if "result_json" not in metrics:
                return
            i = int(metrics["index"])
            if results[i] is None:
                results[i] = json.loads(metrics["result_json"])
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]

        class _Collect(tune.Callback):
            """Save each trial's result in the driver the moment it reports.

            Tune pickles its callbacks with the experiment state; ``take`` (and the caller's
            ``on_result`` behind it: progress bars, open files) stays in the driver, so it is
            an attribute left out of the pickle, not a closure."""

            def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
                self.sink: Callable[[dict[str, Any]], None] | None = sink

            def __getstate__(self) -> dict[str, Any]:
                return {"sink": None}

            def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                                **info: Any) -> None:
                if self.sink is not None:
                    self.sink(result)

        resources = {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}
        trainable = tune.with_resources(tune.with_parameters(_trainable, job=job, payloads=list(payloads)), resources)
        self._rungs += 1
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(list(range(len(payloads))))},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"rung{self._rungs}", storage_path=self._storage.name, verbose=0, callbacks=[_Collect(take)],
                failure_config=tune.FailureConfig(max_failures=2),  # trials are deterministic: a retry is safe
            ),
        )
        grid = tuner.fit()
        finished = [grid[j] for j in range(len(grid))]
        errors = [r.error for r in finished if r.error is not None]
        if errors:
            raise LrscoutError(f"{len(errors)} Ray trial(s) failed; first error: {errors[0]}")
        for r in finished:  # results the callback did not see (should not happen, but be safe)
            take(r.metrics or {})
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise LrscoutError(f"Ray returned no result for trial(s) {missing}")
        return results  # type: ignore[return-value]
