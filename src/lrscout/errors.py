"""One exception tree for everything lrscout raises on purpose.

    LrscoutError                 base; the CLI prints its message on one line, exit 2
    ├── ConfigError              bad arguments: unknown names, impossible ranges
    ├── DataError                missing / empty / unreadable data, logs, checkpoints
    ├── CurveError               a loss curve too short or too broken to analyse
    ├── DivergenceError          training could not be recovered by the guard
    └── MissingDependencyError   an optional extra is not installed (message has the hint)
"""

from __future__ import annotations


class LrscoutError(Exception):
    """Base class: an error the user can fix, reported as one line.

    ``argument`` names the argument(s) the message speaks of (``"lr"``, or
    ``("data_dir", "download")``), written in the message as those names; the CLI
    rewrites them to its flags (``lr`` -> ``--lr``). The message never names a flag.
    """

    def __init__(self, message: str = "", *, argument: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.arguments: tuple[str, ...] = (argument,) if isinstance(argument, str) else tuple(argument or ())


class ConfigError(LrscoutError, ValueError):
    """An argument is invalid (unknown name, empty range, ...)."""


class DataError(LrscoutError):
    """Data, a log or a checkpoint is missing, empty or malformed."""


class CurveError(LrscoutError, ValueError):
    """A loss curve cannot be analysed (too few finite points, ...)."""


class DivergenceError(LrscoutError):
    """Training kept diverging after the allowed number of recoveries."""


class MissingDependencyError(LrscoutError, ImportError):
    """An optional dependency is missing; the message says which extra to install."""


def unknown_name(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> ConfigError:
    """Build the standard 'unknown X' error that lists the valid choices."""
    return ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}")


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise with the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'lrscout[{extra}]'"
        ) from exc


def check_version(data: object, what: str, version: int) -> None:
    """Raise :class:`DataError` unless ``data`` is a dict whose ``"version"`` is ``version``
    (``what`` names the file in the message, e.g. ``"train.json"``)."""
    if not isinstance(data, dict) or data.get("version") != version:
        got = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise DataError(f"unsupported {what} version {got!r}; expected {version}")
