"""`make run` (deploy/local/run.py) stops cleanly and exits 0 on SIGINT as on SIGTERM.

run.py's own main() runs in a subprocess; only what would need the infrastructure is replaced: each service is
a small Python process that stops on SIGINT/SIGTERM as uvicorn does, readiness is immediate and the seeding
returns fixed keys. A shell without job control starts `make run &` with SIGINT ignored: that case is run too,
through make itself.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import REPO, TIME_SCALE

BANNER = "GoGlobal Referral Network is running"
DEADLINE_S = 30.0 * TIME_SCALE

# A stand-in service: stops on SIGINT/SIGTERM as uvicorn does, and says by which.
SERVICE = """
import os, signal, sys
def stop(signum, frame):
    os.write(1, f"service stopped by {signal.Signals(signum).name}\\n".encode())  # one write: lines stay whole
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
os.write(1, f"service up {os.getpid()}\\n".encode())
while True:
    signal.pause()
"""

# run.py's main() with its own start() (its Popen options included: the services' sessions of their own), but
# each service the stand-in in argv[1]; readiness immediate, the seeding fixed keys.
HARNESS = f"""
import subprocess, sys
sys.path.insert(0, {str(REPO / "deploy" / "local")!r})
import run

popen = subprocess.Popen
run.subprocess.Popen = lambda argv, **options: popen([sys.executable, sys.argv[1]], **options)
run.ready = lambda port: True
run.seed.run = lambda url: run.seed.DemoKeys("op", "ent", "par")
chosen: list[int] = []  # free HTTP ports: run.py refuses to start on taken ones
for variable in ("GOGLOBAL_INTAKE_PORT", "GOGLOBAL_MATCHING_PORT", "GOGLOBAL_NOTIFICATIONS_PORT"):
    chosen.append(run.ports.free_port(chosen))
    run.os.environ[variable] = str(chosen[-1])
sys.exit(run.main())
"""


# What a non-interactive shell does to a command it starts with `&`: SIGINT ignored, kept across exec.
IGNORING_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])",
]


def wait_for(probe: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not probe():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {DEADLINE_S:.0f}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def harness(tmp_path: Path) -> list[str]:
    """The command that runs run.py's main() with the stand-in services."""
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "harness.py").write_text(HARNESS)
    return [sys.executable, str(tmp_path / "harness.py"), str(tmp_path / "service.py")]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; whatever a failure left running is killed at the end: the group of each,
    and the stand-in services (in sessions of their own), found by the pids they printed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for log in tmp_path.glob("*.log"):
        for pid in re.findall(r"service up (\d+)", log.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def launch(
    argv: list[str], log: Path, sigint_ignored: bool, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Starts `argv` in a process group of its own (so the test can signal the whole group, as a terminal's
    Ctrl-C or `kill -INT -PGID` does) and waits for run.py's banner and the three services."""
    with log.open("wb") as out:
        command = [*IGNORING_SIGINT, *argv] if sigint_ignored else argv
        env = {**os.environ, "GOGLOBAL_WEBHOOK_MASTER_KEY": "k" * 40, "GOGLOBAL_STATE_DIR": str(log.parent)}
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, process_group=0, cwd=REPO, env=env)
    started.append(proc)
    wait_for(lambda: BANNER in log.read_text() or proc.poll() is not None, "the banner")
    assert BANNER in log.read_text(), log.read_text()
    wait_for(lambda: log.read_text().count("service up") == 3, "three services")
    return proc


def finish(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError("run.py did not stop") from None


@pytest.mark.parametrize(
    ("sig", "whole_group", "sigint_ignored"),
    [
        (signal.SIGINT, True, True),  # `make run &` in a script, then `kill -INT -PGID`
        (signal.SIGINT, False, True),  # the same, `kill -INT` of run.py alone
        (signal.SIGINT, True, False),  # Ctrl-C in a terminal
        (signal.SIGTERM, False, False),
    ],
    ids=["sigint-group-inherited-ignore", "sigint-run-py-inherited-ignore", "ctrl-c", "sigterm"],
)
def test_a_stop_signal_stops_the_services_and_exits_0(
    harness: list[str],
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
    sig: signal.Signals,
    whole_group: bool,
    sigint_ignored: bool,
) -> None:
    log = tmp_path / "run.log"
    proc = launch(harness, log, sigint_ignored, started)
    if whole_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    code = finish(proc)
    output = log.read_text()
    assert code == 0, output
    assert f"{sig.name}: stopping services..." in output
    assert "a service exited" not in output
    # Each service is stopped once, by run.py: a Ctrl-C of the group does not reach them directly (a second
    # signal while they stop could cut their shutdown short).
    assert output.count("service stopped by SIGTERM") == 3 and "service stopped by SIGINT" not in output, output
    for name in ("intake", "matching", "notifications"):
        assert f"{name} exited with 0" in output, output


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_in_the_background_stopped_with_sigint_is_no_error(
    harness: list[str], tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """The reported case: make, started with SIGINT ignored, reported run.py's exit as `Error 1`."""
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t@{shlex.join(harness)}\n")
    log = tmp_path / "make.log"
    proc = launch(["make", "--no-print-directory", "-f", str(makefile), "run"], log, True, started)
    os.killpg(proc.pid, signal.SIGINT)
    code = finish(proc)
    output = log.read_text()
    assert code == 0, output
    assert "Error" not in output
    assert output.count("exited with 0") == 3, output


def test_the_signal_handlers_map_both_signals_to_a_stop() -> None:
    """In-process: after handle_stop_signals(), SIGINT, SIGTERM and SIGHUP raise run.Stop (a KeyboardInterrupt, which
    asyncio lets through), even when SIGINT was ignored before."""
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    try:
        import run
    finally:
        sys.path.remove(str(REPO / "deploy" / "local"))
    saved = {sig: signal.getsignal(sig) for sig in run.STOP_SIGNALS}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        run.handle_stop_signals()
        for sig in run.STOP_SIGNALS:
            with pytest.raises(run.Stop) as stopped:
                signal.raise_signal(sig)
            assert isinstance(stopped.value, KeyboardInterrupt)
            assert stopped.value.signum == sig and str(stopped.value) == sig.name
        run.ignore_stop_signals()
        for sig in run.STOP_SIGNALS:
            signal.raise_signal(sig)  # ignored while stopping: nothing raised
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
