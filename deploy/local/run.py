"""`make run`: the three services on the native infrastructure, seeded with the demo directory and keys.

Ctrl-C (or SIGTERM) stops the services gracefully; the infrastructure keeps running (`make infra-down`).
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
    return subprocess.Popen([sys.executable, "-m", name], env=env)


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


def main() -> int:
    procs = {name: start(name, port) for name, port in SERVICES.items()}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(ready(port) for port in SERVICES.values()):
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                print(f"services failed to become ready: {dead or 'timeout'}", file=sys.stderr)
                stop_all(procs)
                return 1
            time.sleep(0.5)
        keys = seed.run(f"http://127.0.0.1:{SERVICES['intake']}")
        print(BANNER.format(operator=keys.operator, enterprise=keys.enterprise, partner=keys.partner), flush=True)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        print("a service exited; stopping the others", file=sys.stderr)
        stop_all(procs)
        return 1
    except KeyboardInterrupt:
        print("\nstopping services...", flush=True)
        stop_all(procs)
        return 0


BANNER = """
GoGlobal Referral Network is running, with 32 demo partners.
  API docs:   http://127.0.0.1:8000/docs        readiness: http://127.0.0.1:8000/readyz (:8001, :8002)

Demo keys (new ones each run; shown once):
  export OPERATOR={operator}
  export ENTERPRISE={enterprise}
  export PARTNER={partner}      # lexbridge-legal

A first request, with two needs (README.md, "A full walk", goes on from here):
  curl -s -X POST http://127.0.0.1:8000/v1/service-requests -H "Authorization: Bearer $ENTERPRISE" \\
    -H 'content-type: application/json' -d '{{"needs": [
      {{"service_category": "legal", "target_markets": ["AE", "SA"], "description": "Dubai subsidiary"}},
      {{"service_category": "banking_and_fund_management", "target_markets": ["AE"]}}]}}'

Ctrl-C stops the services; `make infra-down` stops Kafka and nx-27017.
"""

if __name__ == "__main__":
    sys.exit(main())
