"""What every group of the ``tally`` command shares: the consoles, ``--url``, ``fail()``
and the call of a read that turns a refusal into an exit status.

Exit status: 0 success, 1 the operation was refused or failed, 2 the input could not be
read (docs/cli.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
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


#: Set by the ``tally`` command's own options (``tally --key FILE --ca-file FILE ...``):
#: the account key that signs every API request (an authenticated node,
#: docs/access.md), and the CA file that verifies a node's TLS certificate.
CONNECTION: dict[str, Path | None] = {"key": None, "ca_file": None}


def open_client(url: str, signer: Any = None) -> Any:
    """A :class:`~tally.sdk.TallyClient` for ``url`` that signs its requests with the
    ``--key`` given to ``tally`` itself (env ``TALLY_KEY``), else with ``signer`` (the
    key a command signs its transaction with), else not at all; and verifies TLS with
    ``--ca-file`` (env ``TALLY_CA_FILE``) when given."""
    from tally import keys as keyfiles
    from tally.sdk import TallyClient

    key_path, ca_file = CONNECTION["key"], CONNECTION["ca_file"]
    if key_path is not None:
        try:
            signer = keyfiles.load(key_path)
        except ValueError as exc:
            fail(str(exc), 2)
    verify: str | bool = str(ca_file) if ca_file is not None else True
    return TallyClient(url, signer=signer, verify=verify)


def print_json(value: Any) -> None:
    """A value (or anything with ``to_dict``) as indented JSON on standard output."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    console.print_json(json.dumps(value))


def transact(url: str, key: Path, op: Callable[[Any], Any]) -> Any:
    """Sign with ``key``, send ``op(account)`` through the SDK, wait for the block; the
    receipt, or exit 1 with the code the node refused it with."""
    from tally import keys as keyfiles
    from tally.sdk import ApiError, NodeUnreachable

    try:
        named = keyfiles.load(key)
    except ValueError as exc:
        fail(str(exc), 2)
    with open_client(url, named) as client:
        try:
            return op(client.account(named))
        except NodeUnreachable as exc:
            fail(exc.message)
        except ApiError as exc:
            fail(f"refused ({exc.code}): {exc.message}")


def propose(url: str, key: Path, action: str, ttl: int | None, **args: Any) -> None:
    """Propose a committee action; print the proposal as it stands after its block."""
    if ttl is not None:
        args["ttl"] = ttl
    receipt = transact(url, key, lambda a: a.propose(action, **args))
    with open_client(url) as client:
        proposal = call(client.proposal, receipt.tx)
    print_json({"tx": receipt.tx, "height": receipt.height, "proposal": receipt.tx,
                "action": action, "status": proposal.status,
                "tally": proposal.tally.model_dump(by_alias=True)})


def print_receipt(receipt: Any) -> None:
    print_json(receipt.to_dict())
