"""A node's home directory: genesis, the validator key, account keys and the data.

    <home>/genesis.json       the chain's genesis document
    <home>/validator.json     this node's validator key (signs checkpoints)
    <home>/keys/<name>.json   account keys created by ``tally init`` for development
    <home>/data/chain.sqlite  the ledger
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tally import keys
from tally.crypto import get_suite
from tally.genesis import Genesis, make_genesis

#: Accounts ``tally init`` creates for development and the demo, with their roles.
DEV_ACCOUNTS: dict[str, list[str]] = {
    "admin": ["admin"],
    "issuer": ["issuer"],
    "custodian": ["custodian"],
    "regulator": ["regulator"],
    "alice": [],
    "bob": [],
    "lender": [],
    "supplier": [],
    "factor": [],
}


@dataclass(frozen=True)
class Home:
    path: Path

    @property
    def genesis_path(self) -> Path:
        return self.path / "genesis.json"

    @property
    def validator_path(self) -> Path:
        return self.path / "validator.json"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    def key_path(self, name: str) -> Path:
        return self.path / "keys" / f"{name}.json"

    def genesis(self) -> Genesis:
        if not self.genesis_path.exists():
            raise FileNotFoundError(f"{self.genesis_path} not found: run `tally init` first")
        return Genesis.read(self.genesis_path)

    def validator(self) -> keys.NamedKey:
        return keys.load(self.validator_path)

    def key(self, name: str) -> keys.NamedKey:
        return keys.load(self.key_path(name))


def init_home(path: Path, *, suite_name: str = "intl", chain_id: str = "tally-dev",
              validator_name: str = "validator-0", accounts: dict[str, list[str]] | None = None,
              time_ms: int | None = None) -> Home:
    """Create a single-validator home with development accounts. Refuses to overwrite."""
    home = Home(Path(path))
    if home.genesis_path.exists():
        raise FileExistsError(f"{home.genesis_path} already exists")
    home.path.mkdir(parents=True, exist_ok=True)
    suite = get_suite(suite_name)
    validator = keys.generate(validator_name, suite_name)
    keys.save(home.validator_path, validator)
    roles: dict[str, list[str]] = {}
    for name, account_roles in (DEV_ACCOUNTS if accounts is None else accounts).items():
        account = keys.generate(name, suite_name)
        keys.save(home.key_path(name), account)
        if account_roles:
            roles[account.address] = account_roles
    genesis = make_genesis(chain_id, suite, [(validator.name, validator.key)], roles,
                           time_ms if time_ms is not None else time.time_ns() // 1_000_000)
    genesis.write(home.genesis_path)
    return home
