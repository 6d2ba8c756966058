"""Fixtures for the Python interop tests: start a real corelay binary.

The server is started as ``$CORELAY_BIN --dev --port 0 --udp-port 0 --tcp-port 0``. It prints one line
per listener on stdout (``corelay listening on http://127.0.0.1:PORT``); the
first one is used. Logs (stderr) go to a file that is printed when a test
fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

# CORELAY_TEST_SIGNAL=v0: every Room connects with single_peer_connection=False (LiveKit's
# v0 path, `/rtc` with two peer connections) unless its test chose; otherwise the SDK's
# default (`/rtc/v1`, one peer connection). `scripts/test` runs the media checks both ways.
if os.environ.get("CORELAY_TEST_SIGNAL") == "v0":
    from livekit import rtc as _rtc

    _sdk_connect = _rtc.Room.connect

    async def _connect_v0(self, url, token, options=None):  # type: ignore[no-untyped-def]
        options = options if options is not None else _rtc.RoomOptions()
        if options.single_peer_connection is None:
            options.single_peer_connection = False
        return await _sdk_connect(self, url, token, options)

    _rtc.Room.connect = _connect_v0  # type: ignore[method-assign]
LISTEN_RE = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
LOG_DIR = REPO_ROOT / "target" / "interop" / "logs"

API_KEY = "devkey"
API_SECRET = "secret"


class Corelay(NamedTuple):
    url: str
    api_key: str
    api_secret: str

    def join_token(self, room: str, identity: str) -> str:
        """A token that may join `room` as `identity`, signed with the dev key."""
        from livekit import api

        grants = api.VideoGrants(room_join=True, room=room)
        return (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_grants(grants)
            .to_jwt()
        )


class _Server:
    def __init__(
        self,
        binary: Path,
        extra_args: Optional[list[str]] = None,
        dev: bool = True,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.binary = binary
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log = tempfile.NamedTemporaryFile(
            prefix="corelay-py-", suffix=".log", dir=LOG_DIR, delete=False
        )
        self.stdout_lines: list[str] = []
        self.url: Optional[str] = None
        self._url_ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                str(binary),
                *(["--dev"] if dev else []),
                "--port",
                "0",
                "--udp-port",
                "0",
                "--tcp-port",
                "0",
                *(extra_args or []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # stderr goes straight to a file: it can never fill a pipe.
            stderr=self.log,
            text=True,
            bufsize=1,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        # Drain stdout for the server's whole life so it never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            if self.url is None:
                m = LISTEN_RE.search(line)
                if m:
                    self.url = m.group(1).rstrip("/")
                    self._url_ready.set()
        self._url_ready.set()  # EOF: wake the waiter

    def wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._url_ready.wait(timeout=0.1):
                break
            if self.proc.poll() is not None:
                break
        if self.url is None:
            code = self.proc.poll()
            self.stop()
            why = (
                f"exited with status {code}"
                if code is not None
                else f"printed no 'listening on http://...' line within {START_TIMEOUT_S:.0f}s"
            )
            pytest.fail(f"corelay ({self.binary}) {why}\n{self.describe()}", pytrace=False)
        return self.url

    def metrics_url(self, timeout: float = 5.0) -> str:
        """The Prometheus URL the server printed (`prometheus.port` set)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stdout_lines:
                m = re.search(r"metrics on (http://\S+)", line)
                if m:
                    return m.group(1)
            time.sleep(0.05)
        pytest.fail(f"no 'metrics on' line: {self.stdout_lines}", pytrace=False)

    def logs(self) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""

    def describe(self, max_chars: int = 20000) -> str:
        logs = self.logs()
        if len(logs) > max_chars:
            logs = "...\n" + logs[-max_chars:]
        out = "\n".join(self.stdout_lines)
        return f"--- corelay stdout ---\n{out}\n--- corelay stderr ({self.log.name}) ---\n{logs}"

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        # The server runs in its own process group (start_new_session), so a
        # wrapper script and its children are stopped together.
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self._signal(signal.SIGKILL)  # leftovers in the group, if any
        self._reader.join(timeout=2)
        self.log.close()


def affinity_args(directory: Path, shards: int, spread_after: Optional[int] = None) -> list[str]:
    """`--core-affinity FILE` for a server with `shards` shards (and, when given,
    `spread_after`: a room's participants on its home shard before it spreads)."""
    path = directory / "core-affinity.toml"
    text = f"control_core = 0\nshard_cores = []\nshards = {shards}\n"
    if spread_after is not None:
        text += f"spread_after = {spread_after}\n"
    path.write_text(text)
    return ["--core-affinity", str(path)]


def _binary() -> Path:
    env = os.environ.get("CORELAY_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "corelay"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"corelay binary not found at {path}: run `cargo build --bin corelay` "
            "or set CORELAY_BIN",
            pytrace=False,
        )
    return path


_SERVERS: list[_Server] = []


@pytest.fixture(scope="session")
def corelay() -> Iterator[Corelay]:
    """A running corelay dev server: (url, api_key, api_secret)."""
    server = _Server(_binary())
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        yield Corelay(url, API_KEY, API_SECRET)
    finally:
        server.stop()
        _SERVERS.remove(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVERS:
        server = _SERVERS[-1]
        if server.proc.poll() is not None:
            report.sections.append(
                ("corelay", f"server exited with status {server.proc.returncode}")
            )
        report.sections.append(("corelay log", server.describe()))


# The rtc SDK keeps Rust threads (its tokio runtime) that call back into Python. When the
# interpreter finalizes, such a thread asking for the GIL is ended with pthread_exit, whose
# forced unwind through the SDK's `extern "C"` frames aborts the process ("panic in a
# function that cannot unwind"), turning a green run into exit 134 after the summary was
# printed. Once pytest has reported, the process leaves without finalizing.
_EXIT_STATUS = {"status": 0}


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    _EXIT_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS["status"])
