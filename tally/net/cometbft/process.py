"""Running processes with a log file and a pid file: ManagedProcess, CometProcess.

A process is attached (it dies with the Python process that started it) or detached
(it survives, and another process finds it again through its pid file), which is
what `tally net up/down` and the tests both need. `wait_for_listen` waits for an
ABCI app to accept connections before cometbft is started against it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .binary import find_cometbft

_PR_SET_PDEATHSIG = 1
_prctl: Any = None
with contextlib.suppress(Exception):  # resolved here: the child must not dlopen after fork
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0).
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


class ManagedProcess:
    """A child process with its output in `log_path` and its pid in `pid_path`.

    Attached (default): the child gets SIGTERM if this process dies (Linux
    PR_SET_PDEATHSIG), so a crashed test run leaves nothing behind.  Note this fires
    when the *thread* that started it exits: start attached processes from a thread
    that outlives them.  Detached: a new session, no death signal; `from_pidfile`
    finds it again from another process (what `tally net up/down` needs).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        pid_path: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        name: str = "",
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.pid_path = Path(pid_path) if pid_path else None
        self.cwd = cwd
        self.env = env
        self.name = name or Path(self.argv[0]).name
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    # identity -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else self._pid

    @property
    def running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self._pid is not None and _pid_alive(self._pid) and self._is_ours(self._pid)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def _is_ours(self, pid: int) -> bool:
        """Guard against pid reuse: the process must still run our program."""
        cmd = _cmdline(pid)
        return bool(cmd) and Path(cmd[0]).name == Path(self.argv[0]).name

    @classmethod
    def from_pidfile(cls, pid_path: str | os.PathLike[str]) -> ManagedProcess | None:
        """Re-attach to a process started (detached) by another Python process."""
        try:
            info = json.loads(Path(pid_path).read_text())
        except (OSError, ValueError):
            return None
        proc = cls(info["argv"], log_path=info["log"], pid_path=pid_path, name=info.get("name", ""))
        proc._pid = int(info["pid"])
        return proc

    # lifecycle ------------------------------------------------------------------------

    def start(self, *, detached: bool = False) -> ManagedProcess:
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {self.argv}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=self.env,
                start_new_session=detached,
                preexec_fn=None if detached else _die_with_parent,
            )
        self._pid = self._popen.pid
        if self.pid_path:
            self.pid_path.write_text(
                json.dumps(
                    {
                        "pid": self._pid,
                        "argv": self.argv,
                        "log": str(self.log_path),
                        "name": self.name,
                        "detached": detached,
                    }
                )
            )
        return self

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit; the exit code if we are its parent, else None."""
        if self._popen is not None:
            try:
                return self._popen.wait(timeout)
            except subprocess.TimeoutExpired as e:
                raise TimeoutError(f"{self.name} still running") from e
        deadline = None if timeout is None else time.monotonic() + timeout
        # A process on its way out has already lost its command line (so `running`, which
        # checks it against pid reuse, says no) but not yet its pid: wait for that too.
        while self.running or (self._pid is not None and _pid_alive(self._pid)
                               and not _cmdline(self._pid)):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running")
            time.sleep(0.05)
        return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; remove the pid file."""
        rc = None
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                rc = self.wait(timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
                rc = self.wait(5)
        elif self._popen is not None:
            rc = self._popen.poll()
        if self.pid_path:
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        return rc

    def kill(self) -> int | None:
        """SIGKILL: the crash case (no shutdown hooks run)."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            return self.wait(5)
        return None

    def restart(self, *, detached: bool = False, timeout: float = 10.0) -> ManagedProcess:
        self.stop(timeout)
        return self.start(detached=detached)

    def tail(self, n: int = 40) -> str:
        """Last `n` lines of the log (for error messages)."""
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return ""


class CometProcess(ManagedProcess):
    """`cometbft start` for one home; log in home/cometbft.log, pid in home/cometbft.pid."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        binary: str | os.PathLike[str] | None = None,
        proxy_app: str | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        home = Path(home)
        argv = [str(find_cometbft(binary)), "start", "--home", str(home)]
        if proxy_app:
            argv.append(f"--proxy_app={proxy_app}")
        argv.extend(extra_args)
        super().__init__(
            argv,
            log_path=home / "cometbft.log",
            pid_path=home / "cometbft.pid",
            name=f"cometbft[{home.name}]",
        )
        self.home = home


def wait_for_listen(address: str, timeout: float = 15.0) -> None:
    """Block until an ABCI app accepts connections at `address` (tcp:// or unix://).

    CometBFT retries a refused ABCI connection only every few seconds, so starting it
    after the app is listening saves that wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if address.startswith("unix://"):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(address[len("unix://") :])
            else:
                host, _, port = address.removeprefix("tcp://").rpartition(":")
                socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening at {address}") from None
            time.sleep(0.05)
