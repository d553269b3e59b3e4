"""`make run`: the three services on the native infrastructure, seeded with the demo directory and keys.

Ctrl-C, SIGINT, SIGTERM or SIGHUP stops the services gracefully (one SIGTERM each) and exits 0; the
infrastructure keeps running (`make infra-down`). The signals are handled explicitly: a shell without job control
starts `make run &` with SIGINT ignored, and Python leaves an inherited SIG_IGN alone. The services run in a
session of their own, so a Ctrl-C or a `kill -INT` of the process group reaches this script only, and each
service is stopped once, by it.

The ports come from deploy/local/ports.py (GOGLOBAL_KAFKA_PORT, GOGLOBAL_MONGO_PORT, GOGLOBAL_INTAKE_PORT,
GOGLOBAL_MATCHING_PORT, GOGLOBAL_NOTIFICATIONS_PORT): the services get the URIs and HTTP ports derived from them,
whatever GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS, GOGLOBAL_MONGODB_URI or GOGLOBAL_HTTP_PORT say, and the HTTP ports
are checked before any service starts.
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

import ports  # deploy/local/ports.py, beside this file
import seed  # deploy/local/seed.py, beside this file

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
EX_USAGE, EX_UNAVAILABLE = 64, 69  # sysexits.h: a refused port setting; a port that is taken


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


def start(name: str, stack: ports.Ports, key: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **stack.service_env(name), "GOGLOBAL_WEBHOOK_MASTER_KEY": key}
    return subprocess.Popen([sys.executable, "-m", name], env=env, start_new_session=True)


def chosen_ports() -> ports.Ports:
    """The ports, with every derived setting that disagrees with them overridden (and said so)."""
    stack = ports.from_env()
    for variable, value in stack.infra_env().items():
        if os.environ.get(variable, value) != value:
            print(f"note: {variable}={os.environ[variable]} is ignored: make run's stack is at {value}", flush=True)
    os.environ.update(stack.infra_env())  # for seed.py, which connects from this process
    return stack


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
    try:
        stack = chosen_ports()
    except ports.PortError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EX_USAGE
    if busy := ports.taken(stack.service_bindings()):
        print(f"run: {ports.busy_message(busy)}", file=sys.stderr)
        return EX_UNAVAILABLE
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        key = master_key()
        for name in ports.SERVICES:
            procs[name] = start(name, stack, key)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(ready(stack.http_port(name)) for name in ports.SERVICES):
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                ignore_stop_signals()
                print(f"services failed to become ready: {dead or 'timeout'}", file=sys.stderr)
                stop_all(procs)
                return 1
            time.sleep(0.5)
        keys = seed.run(stack.api_url)
        print(banner(stack, keys), flush=True)
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


def banner(stack: ports.Ports, keys: seed.DemoKeys) -> str:
    return BANNER.format(
        api=stack.api_url,
        matching=stack.http_port("matching"),
        notifications=stack.http_port("notifications"),
        kafka=stack.kafka_bootstrap_servers,
        mongo=stack.mongodb_uri,
        operator=keys.operator,
        enterprise=keys.enterprise,
        partner=keys.partner,
    )


BANNER = """
GoGlobal Referral Network is running, with 32 demo partners.
  API docs:   {api}/docs        readiness: {api}/readyz (:{matching}, :{notifications})
  console:    {api}/console     Kafka: {kafka}   nx-27017: {mongo}

Demo keys (new ones each run; shown once), and the API's address (the walk's $API; the CLI's GOGLOBAL_API_URL):
  export OPERATOR={operator}
  export ENTERPRISE={enterprise}
  export PARTNER={partner}      # lexbridge-legal
  export API={api} GOGLOBAL_API_URL={api}

The walk in README.md ("A full walk") starts with a request with two needs (a fresh Idempotency-Key each time):
  REQUEST=$(curl -s -X POST $API/v1/service-requests -H "Authorization: Bearer $ENTERPRISE" \\
    -H 'content-type: application/json' -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" \\
    -d '{{"needs": [
      {{"service_category": "legal", "target_markets": ["AE", "SA"], "description": "Dubai subsidiary"}},
      {{"service_category": "banking_and_fund_management", "target_markets": ["AE"]}}]}}')

Ctrl-C stops the services; Kafka and nx-27017 keep running until `make infra-down` (with the same GOGLOBAL_*_PORT).
"""

if __name__ == "__main__":
    sys.exit(main())
