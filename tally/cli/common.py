"""What every group of the ``tally`` command shares: the consoles, ``--url``, ``fail()``
and the call of a read that turns a refusal into an exit status.

Exit status: 0 success, 1 the operation was refused or failed, 2 the input could not be
read (docs/cli.md).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

DEFAULT_URL = os.environ.get("TALLY_URL", "http://127.0.0.1:26680")
UrlOpt = Annotated[str, typer.Option("--url", help="node API URL", envvar="TALLY_URL")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


def call(fn: Any, *args: Any) -> Any:
    """A read against a node; a refusal or an unreachable node fails with exit 1."""
    from tally.sdk import ApiError

    try:
        return fn(*args)
    except ApiError as exc:
        fail(f"{exc.code}: {exc.message}")
    except Exception as exc:  # connection errors and the like
        fail(f"cannot reach the node: {exc}")
