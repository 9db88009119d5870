"""One writer per data directory: a second node on the same data is refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tally.state.store import Store, StoreLocked


def test_a_second_store_on_the_same_database_is_refused(tmp_path: Path) -> None:
    first = Store(tmp_path / "chain.sqlite")
    with pytest.raises(StoreLocked, match="in use by another Tally process"):
        Store(tmp_path / "chain.sqlite")
    first.close()
    Store(tmp_path / "chain.sqlite").close()  # free again once the first is closed
