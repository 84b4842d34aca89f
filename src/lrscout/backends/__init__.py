"""Where trials run: ``local`` (this process or a process pool) or ``ray`` (Ray Tune).

    get_backend("local", workers=4)
    get_backend("ray", address="ray://head:10001")

Backends only execute jobs; which trials run and who advances is decided in
:mod:`lrscout.selection.halving`, so every backend makes the same choice for the same seed.
"""

from __future__ import annotations

from ..errors import ConfigError, unknown_name
from .base import Backend, Job, OnResult, Payload
from .local import LocalBackend

BACKENDS: tuple[str, ...] = ("local", "ray")


def get_backend(name: str, *, workers: int = 1, ray_address: str | None = None, ray_num_cpus: int | None = None,
                cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0) -> Backend:
    """Build backend ``name``; options that belong to another backend raise ``ConfigError``."""
    if name == "local":
        if ray_address is not None or ray_num_cpus is not None:
            raise ConfigError("ray_address / ray_num_cpus need backend 'ray'")
        return LocalBackend(workers=workers)
    if name == "ray":
        if workers != 1:
            raise ConfigError("workers is an option of the local backend; Ray sizes itself from the cluster")
        from .ray import RayBackend

        return RayBackend(address=ray_address, num_cpus=ray_num_cpus, cpus_per_trial=cpus_per_trial,
                          gpus_per_trial=gpus_per_trial)
    raise unknown_name("backend", name, list(BACKENDS))


__all__ = ["BACKENDS", "Backend", "Job", "LocalBackend", "OnResult", "Payload", "get_backend"]
