"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional, cast, get_type_hints

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ConfigError, LrscoutError
from ..protocol import TrainingTask
from ..selection.objectives import Objective
from ..selection.selection import DEFAULT_BUDGET
from ..task import Task

out = Console()  # results
err = Console(stderr=True)  # progress and messages

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="digits, digits-mnist (built in), mnist, "
                                          "fashion-mnist, kmnist, usps, cifar10, imagefolder")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="simplecnn, resnet18 or timm:NAME")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", "-o", help="sgd, sgdm, nesterov, adam, adamw, rmsprop")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="batch size")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed (weights, batches)")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:N (default: cuda if available)")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="folder holding the dataset (default $LRSCOUT_DATA_DIR or ./data)")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="allow torchvision to download the dataset")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="use a random subset of this many training images")]
AugmentOpt = Annotated[bool, typer.Option("--augment", help="random rotation / scale / shift of each "
                                          "training batch (digits-style data)")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", "-s", help="constant, step, multistep, cosine, onecycle, plateau")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="schedule parameter KEY=VALUE "
                                                                             "(repeatable), e.g. step_size=3")]
EpochsOpt = Annotated[int, typer.Option("--epochs", "-e", help="epochs of your training run (the protocol)")]
NumIterOpt = Annotated[int, typer.Option("--num-iter", help="range test: optimizer steps in the sweep (>= 5)")]
OutOpt = Annotated[Path, typer.Option("--out", help="output directory")]
ResumableOutOpt = Annotated[Path, typer.Option("--out", help="output directory (rerun into it to resume)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the JSON result to stdout instead of a table")]


TaskOpt = Annotated[Optional[str], typer.Option(
    "--task", "-t", help="your own code: MODULE:FUNCTION or FILE.py:FUNCTION returning lrscout.task_from(...) "
    "(instead of --dataset/--model/--optimizer); select also takes lrscout.objective(...)")]

#: The options that describe a named task; --task replaces all of them.
NAMED_TASK_OPTIONS = ("dataset", "model", "optimizer", "batch_size", "seed", "device", "data_dir",
                      "download", "limit", "augment", "pretrained", "weights", "weight_decay")


def given_options(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` the user typed (not left at their defaults), as flags."""
    typed = [n for n in names if n in ctx.params
             and getattr(ctx.get_parameter_source(n), "name", None) in ("COMMANDLINE", "ENVIRONMENT")]
    return ["--" + n.replace("_", "-") for n in typed]


def refuse_task_clash(ctx: typer.Context, task_spec: str | None) -> None:
    """``--task`` beside a named-task option (``--dataset`` ...) is a usage error: the
    user's task function sets those, and silently ignoring one would train something else."""
    clash = given_options(ctx, NAMED_TASK_OPTIONS) if task_spec is not None else []
    if clash:
        raise ConfigError(f"--task replaces {', '.join(clash)}: the task function sets them; give one or the other")


def user_task(spec: str, *, objective_ok: bool = False) -> TrainingTask | Objective:
    """The task ``--task`` names (see :func:`lrscout.custom.load_task`), or the objective
    when ``objective_ok`` (select); named-task options beside it are refused before
    (:func:`refuse_task_clash`, from :func:`command`)."""
    from ..custom import load_target

    task = load_target(spec)
    if isinstance(task, Objective):
        if objective_ok:
            return task
        raise ConfigError(f"{spec} returned an objective (lrscout.objective), which only select runs; this command "
                          "needs a training task: return lrscout.task_from(...) or a lrscout.Task")
    if not isinstance(task, TrainingTask):
        also = " or lrscout.objective(...)" if objective_ok else ""
        raise ConfigError(f"{spec} returned {type(task).__name__}, not a training task; return "
                          f"lrscout.task_from(...){also} or a lrscout.Task")
    return task


class OptionGroup:
    """Base of a frozen dataclass whose fields are CLI options shared by several commands.

    A command takes the group as one parameter whose default instance carries that
    command's defaults (``data: DataOptions = DataOptions(model="resnet18")``);
    :func:`command` spreads the group's fields into the command's options and gathers
    them back into the instance before the command runs. The fields are named as the
    library's arguments, so an error about ``batch_size`` is shown as ``--batch-size``.
    """


@dataclass(frozen=True)
class DataOptions(OptionGroup):
    """What the task is made of, apart from the optimizer: data, model, batches, seed, device."""

    dataset: DatasetOpt = "digits"
    model: ModelOpt = "simplecnn"
    batch_size: BatchOpt = 64
    seed: SeedOpt = 0
    device: DeviceOpt = None
    data_dir: DataDirOpt = None
    download: DownloadOpt = False
    limit: LimitOpt = None
    augment: AugmentOpt = False
    task_spec: TaskOpt = None

    def task(self, optimizer: str, **extra: Any) -> TrainingTask:
        """The named :class:`Task` these options describe, with ``optimizer`` (and ``extra``
        Task fields such as ``weight_decay``); or the user's task that ``--task`` names."""
        if self.task_spec is not None:
            return cast(TrainingTask, user_task(self.task_spec))  # an objective is refused there
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "task_spec"}
        values["data_dir"] = str(self.data_dir) if self.data_dir is not None else None
        return Task(optimizer=optimizer, **values, **extra)

    def target(self, optimizer: str) -> TrainingTask | Objective:
        """What ``select`` runs on: :meth:`task`, or the objective that ``--task`` names."""
        if self.task_spec is not None:
            return user_task(self.task_spec, objective_ok=True)
        return self.task(optimizer)


@dataclass(frozen=True)
class BackendOptions(OptionGroup):
    """Where the trials of a selection run: this machine's process pool or Ray."""

    backend: Annotated[str, typer.Option("--backend", help="local (this machine) or ray (Ray Tune)")] = "local"
    workers: Annotated[int, typer.Option("--workers", help="local backend: parallel worker processes")] = 1
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="ray backend: cluster address "
                                                                                 "(default: start Ray here)")] = None
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads per trial (fixed: CPU results "
                                                           "depend on it); parallelism comes from --workers")] = 1

    def kwargs(self) -> dict[str, Any]:
        """The library's keyword arguments for these options."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SelectionOptions(OptionGroup):
    """The protocol and cost of a selection (``select``, ``compare``)."""

    epochs: EpochsOpt = 10
    budget: Annotated[float, typer.Option("--budget", help="most the selection may cost, in full training runs "
                                                           "(range test included)")] = DEFAULT_BUDGET
    num_iter: Annotated[int | None, typer.Option("--num-iter", help="range test: optimizer steps in the sweep "
                                                    "(>= 5; default: sized to the budget, at most 100)")] = None

    def kwargs(self) -> dict[str, Any]:
        """The library's keyword arguments for these options (no ``num_iter``: the range
        test is sized to the budget)."""
        find_kwargs = {} if self.num_iter is None else {"num_iter": self.num_iter}
        return {"epochs": self.epochs, "budget": self.budget, "find_kwargs": find_kwargs}


def command(func: Callable[..., None]) -> Callable[..., None]:
    """Spread the :class:`OptionGroup` parameters of a typer command into options.

    The returned function has the command's own options plus every field of each group
    (with the group default's values as defaults), and calls ``func`` with the groups
    rebuilt. An :class:`LrscoutError` leaving the command learns the flags of the
    arguments it names: its message shows ``--batch-size`` where the library said
    ``batch_size``.
    """
    sig = inspect.signature(func, eval_str=True)
    groups: dict[str, tuple[type[Any], Any]] = {}
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        cls = p.annotation
        if isinstance(cls, type) and issubclass(cls, OptionGroup):
            default: Any = p.default if p.default is not inspect.Parameter.empty else cls()
            groups[p.name] = (cls, default)
            hints = get_type_hints(cls, include_extras=True)
            params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                                         default=getattr(default, f.name)) for f in fields(default)]
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    params.append(inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    names = [p.name for p in params]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise TypeError(f"{func.__name__}: option(s) {clash} declared twice")

    @functools.wraps(func)
    def wrapper(_ctx: typer.Context, **kwargs: Any) -> None:
        for name, (cls, _) in groups.items():
            kwargs[name] = cls(**{f.name: kwargs.pop(f.name) for f in fields(cls)})
        try:
            for group in kwargs.values():
                if isinstance(group, DataOptions):
                    refuse_task_clash(_ctx, group.task_spec)
            func(**kwargs)
        except LrscoutError as exc:  # the message as the user of this command reads it
            exc.args = (with_flags(str(exc), flags_of(exc.arguments, _ctx.command.params)),)
            raise

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


def flags_of(arguments: tuple[str, ...], params: Sequence[Any]) -> dict[str, str]:
    """``{"batch_size": "--batch-size"}`` for the arguments that are options of this command."""
    by_name = {p.name: max(p.opts, key=len) for p in params if p.name and p.opts}
    return {a: by_name[a] for a in arguments if a in by_name}


def with_flags(message: str, flags: dict[str, str]) -> str:
    """``message`` with each argument name in ``flags`` written as its flag, on one line."""
    for argument, flag in flags.items():
        # a whole word, not part of a path, a quoted value or a longer name (lr in start_lr)
        message = re.sub(rf"(?<![\w.'\"/\\-]){re.escape(argument)}(?![\w'\"/\\-]|\.\w)", flag, message)
    return " ".join(message.split())


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``--param`` values: ``["step_size=3", "milestones=[5,8]"]`` -> ``{"step_size": 3,
    "milestones": [5, 8]}`` (a value is JSON when it parses as JSON, else text)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"schedule parameter {item!r} is not KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@contextmanager
def phase_bars(labels: dict[str, str], enabled: bool = True) -> Iterator[Callable[[str, int, int, str], None]]:
    """One rich bar per phase on stderr, yielding ``report(phase, done, total, info)``;
    ``labels`` names each phase's bar. Like :func:`progress_bar`, nothing shows before
    the first report, so an input error prints only its line."""
    bar: Progress | None = None
    ids: dict[str, Any] = {}

    def report(phase: str, done: int, total: int, info: str) -> None:
        nonlocal bar
        if not enabled:
            return
        if bar is None:
            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err)
            bar.start()
        if phase not in ids:
            ids[phase] = bar.add_task(labels.get(phase, phase), total=total, info="")
        bar.update(ids[phase], completed=done, total=total, info=info)

    try:
        yield report
    finally:
        if bar is not None:
            bar.stop()


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr, yielding ``advance(n=1, info="")``.

    The bar appears at the first ``advance`` call, so a command that fails while it is
    still checking its inputs prints only its error line.
    """
    done = 0
    with phase_bars({"": description}, enabled) as report:

        def advance(n: int = 1, info: str = "") -> None:
            nonlocal done
            done += n
            report("", done, total, info)

        yield advance


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))
