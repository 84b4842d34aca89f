"""``lrscout`` entry point: registers the commands and maps errors to one line + exit code.

Exit codes: 0 success, 2 usage or input error (an ``LrscoutError``, or bad options),
130 interrupted with Ctrl-C, 1 an unexpected internal error (one line; ``LRSCOUT_DEBUG=1``
shows the traceback).
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from ..errors import LrscoutError
from .compare import compare_cmd
from .diagnosis import diagnose_cmd
from .find import find_cmd
from .finetuning import finetune_cmd
from .selection import select_cmd
from .training import train_cmd

app = typer.Typer(
    name="lrscout",
    help="Choose learning rates for PyTorch vision training, and prove the choice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Choose learning rates for PyTorch vision training, and prove the choice."""


app.command("find", help="LR range test: sweep the LR, plot the loss, recommend an LR with an interval.")(find_cmd)
app.command("train", help="Train with a given or found LR, a schedule and the divergence guard; files per epoch.")(train_cmd)
app.command("diagnose", help="Read a loss log (CSV, JSON, TensorBoard) and say what the LR did: diverged ... healthy.")(diagnose_cmd)
app.command("select", help="Verified LR: range-test candidates confirmed by short real training runs.")(select_cmd)
app.command("compare", help="Optimizers x schedules, each at its verified LR, ranked.")(compare_cmd)
app.command("finetune", help="Fine-tune a pretrained model: head LR and backbone ratio found, selected and trained.")(finetune_cmd)


def main() -> None:
    logging.basicConfig(level=os.environ.get("LRSCOUT_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        # without standalone mode typer *returns* the code of an Exit, and turns Ctrl-C into Exit(130)
        code = app(standalone_mode=False)
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except LrscoutError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: model, optimizer and files were left as they were", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (bad option, missing argument): one line, exit 2
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if message:  # no arguments at all: the help was printed, nothing to add
            typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:
        if os.environ.get("LRSCOUT_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set LRSCOUT_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
