"""`make run`: the three services on the native infrastructure, seeded with the demo directory and keys.

Ctrl-C, SIGINT, SIGTERM or SIGHUP stops the services gracefully (one SIGTERM each) and exits 0; the
infrastructure keeps running (`make infra-down`). The signals are handled explicitly: a shell without job control
starts `make run &` with SIGINT ignored, and Python leaves an inherited SIG_IGN alone. The services run in a
session of their own, so a Ctrl-C or a `kill -INT` of the process group reaches this script only, and each
service is stopped once, by it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import seed  # deploy/local/seed.py, beside this file

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"intake": 8000, "matching": 8001, "notifications": 8002}
READY_TIMEOUT_S = 60.0


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def master_key() -> str:
    """The webhook master key: from the environment, or generated once into the state directory."""
    if key := os.environ.get("GOGLOBAL_WEBHOOK_MASTER_KEY"):
        return key
    path = Path(os.environ.get("GOGLOBAL_STATE_DIR", REPO / ".state")) / "webhook-master-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def start(name: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GOGLOBAL_HTTP_PORT": str(port), "GOGLOBAL_WEBHOOK_MASTER_KEY": master_key()}
    return subprocess.Popen([sys.executable, "-m", name], env=env, start_new_session=True)


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        print(f"{name} exited with {code}", flush=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so that asyncio (the seeding) lets it through as it does Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signum)


def handle_stop_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed) raise Stop, whatever this process inherited (SIG_IGN
    included)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stop)


def ignore_stop_signals() -> None:
    """While stopping: a second Ctrl-C must not interrupt the orderly shutdown (stop_all kills a service that
    has not stopped 30 s after its SIGTERM)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def main() -> int:
    handle_stop_signals()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, port in SERVICES.items():
            procs[name] = start(name, port)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(ready(port) for port in SERVICES.values()):
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                ignore_stop_signals()
                print(f"services failed to become ready: {dead or 'timeout'}", file=sys.stderr)
                stop_all(procs)
                return 1
            time.sleep(0.5)
        keys = seed.run(f"http://127.0.0.1:{SERVICES['intake']}")
        print(BANNER.format(operator=keys.operator, enterprise=keys.enterprise, partner=keys.partner), flush=True)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        ignore_stop_signals()
        print("a service exited; stopping the others", file=sys.stderr)
        stop_all(procs)
        return 1
    except KeyboardInterrupt as stop:  # Stop, or a KeyboardInterrupt raised before the handlers were in place
        ignore_stop_signals()
        print(f"\n{stop or 'SIGINT'}: stopping services...", flush=True)
        stop_all(procs)
        return 0
    except BaseException:  # seeding failed...: the services, in sessions of their own, must not outlive this
        ignore_stop_signals()
        stop_all(procs)
        raise


BANNER = """
GoGlobal Referral Network is running, with 32 demo partners.
  API docs:   http://127.0.0.1:8000/docs        readiness: http://127.0.0.1:8000/readyz (:8001, :8002)

Demo keys (new ones each run; shown once):
  export OPERATOR={operator}
  export ENTERPRISE={enterprise}
  export PARTNER={partner}      # lexbridge-legal

The walk in README.md ("A full walk") starts with a request with two needs (a fresh Idempotency-Key each time):
  REQUEST=$(curl -s -X POST http://127.0.0.1:8000/v1/service-requests -H "Authorization: Bearer $ENTERPRISE" \\
    -H 'content-type: application/json' -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" \\
    -d '{{"needs": [
      {{"service_category": "legal", "target_markets": ["AE", "SA"], "description": "Dubai subsidiary"}},
      {{"service_category": "banking_and_fund_management", "target_markets": ["AE"]}}]}}')

Ctrl-C stops the services; Kafka and nx-27017 keep running until `make infra-down`.
"""

if __name__ == "__main__":
    sys.exit(main())
