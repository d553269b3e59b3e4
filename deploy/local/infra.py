"""Native Kafka (KRaft) + FerretDB (SQLite) for machines without a Docker engine.

Standard library only, so it runs before any virtual environment exists.

    python3 deploy/local/infra.py up|down|status [kafka|ferretdb]

Environment:
    GOGLOBAL_STATE_DIR   where data, pid files and logs live (default: <repo>/.state)
    GOGLOBAL_CACHE_DIR   where the downloaded jars and the built FerretDB live (default: the state directory),
                         so a second stack (e.g. the chaos tests') reuses them
    GOGLOBAL_KAFKA_PORT  broker port on 127.0.0.1 (default 9092); the controller uses the next port
    GOGLOBAL_MONGO_PORT  FerretDB port on 127.0.0.1 (default 27017)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
START_TIMEOUT_S = 180.0


class InfraError(RuntimeError):
    pass


@dataclass(frozen=True)
class Layout:
    state: Path
    cache: Path
    kafka_port: int
    controller_port: int
    mongo_port: int

    @classmethod
    def from_env(cls) -> Layout:
        state = Path(os.environ.get("GOGLOBAL_STATE_DIR", REPO / ".state")).resolve()
        cache = Path(os.environ.get("GOGLOBAL_CACHE_DIR", state)).resolve()
        kafka_port = _port("GOGLOBAL_KAFKA_PORT", 9092)
        return cls(state, cache, kafka_port, kafka_port + 1, _port("GOGLOBAL_MONGO_PORT", 27017))

    @property
    def libs(self) -> Path:
        return self.cache / "kafka-libs"

    @property
    def ferretdb(self) -> Path:
        return self.cache / "bin" / "ferretdb"

    def pidfile(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"


def _port(var: str, default: int) -> int:
    raw = os.environ.get(var, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InfraError(f"{var}={raw!r} is not a TCP port number")
    return int(raw)


# --- wire checks -------------------------------------------------------------------------------------


def kafka_metadata_ok(port: int) -> bool:
    """Sends a Metadata v4 request (the oldest one Kafka 4 keeps) and expects at least one broker back."""
    client_id = b"goglobal-infra"
    body = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id + struct.pack(">i?", -1, False)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            payload = _recv_exact(sock, size)
    except (OSError, struct.error):
        return False
    correlation_id, _throttle, brokers = struct.unpack(">iii", payload[:12])
    return bool(correlation_id == 7 and brokers >= 1)


def mongo_ping_ok(port: int) -> bool:
    """Sends OP_MSG {ping: 1, $db: "admin"} and checks the reply's ok field."""
    doc = _bson({"ping": 1, "$db": "admin"})
    msg = struct.pack("<IB", 0, 0) + doc
    header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(header + msg)
            length = struct.unpack("<i", _recv_exact(sock, 4))[0]
            reply = _recv_exact(sock, length - 4)
    except (OSError, struct.error):
        return False
    return b"ok\x00" in reply[12:] and _ok_value(reply[12 + 5 :]) == 1.0


def _ok_value(doc: bytes) -> float:
    marker = doc.find(b"\x01ok\x00")
    if marker < 0:
        return 0.0
    return float(struct.unpack("<d", doc[marker + 4 : marker + 12])[0])


def _bson(fields: dict[str, int | str]) -> bytes:
    out = b""
    for key, value in fields.items():
        name = key.encode() + b"\x00"
        if isinstance(value, int):
            out += b"\x10" + name + struct.pack("<i", value)
        else:
            raw = value.encode() + b"\x00"
            out += b"\x02" + name + struct.pack("<i", len(raw)) + raw
    return struct.pack("<i", len(out) + 5) + out + b"\x00"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- processes ---------------------------------------------------------------------------------------


def running_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def spawn(layout: Layout, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    log = layout.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    layout.pidfile(name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    layout.pidfile(name).write_text(str(proc.pid))
    return proc


def stop(layout: Layout, name: str) -> None:
    pid = running_pid(layout.pidfile(name))
    if pid is None:
        layout.pidfile(name).unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running_pid(layout.pidfile(name)):
        time.sleep(0.2)
    if running_pid(layout.pidfile(name)):
        os.kill(pid, signal.SIGKILL)
    layout.pidfile(name).unlink(missing_ok=True)
    print(f"stopped {name} (pid {pid})")


def wait_until(layout: Layout, name: str, proc: subprocess.Popen[bytes], check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise InfraError(f"{name} exited during start-up.\n{tail(layout.log(name))}")
        time.sleep(0.3)
    raise InfraError(f"{name} did not answer within {START_TIMEOUT_S:.0f}s.\n{tail(layout.log(name))}")


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def require_tool(tool: str, why: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise InfraError(f"`{tool}` was not found on PATH; it is needed to {why}. Install it and retry.")
    return found


def ensure_port_free(port: int, service: str, var: str) -> None:
    if port_in_use(port):
        raise InfraError(
            f"port {port} on 127.0.0.1 is taken by another process, so {service} cannot start there. "
            f"Stop that process or choose another port with {var}=<port>."
        )


# --- Kafka -------------------------------------------------------------------------------------------


def ensure_kafka_jars(layout: Layout) -> None:
    """Resolves the jars once per version of the pom (the marker holds the pom's hash)."""
    pom = HERE / "kafka" / "pom.xml"
    marker = layout.libs / ".complete"
    wanted = hashlib.sha256(pom.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == wanted:
        return
    shutil.rmtree(layout.libs, ignore_errors=True)
    require_tool("java", "run the Kafka broker")
    mvn = require_tool("mvn", "download the Kafka broker's jars from Maven Central")
    print("resolving Kafka jars from Maven Central (first run only)...", flush=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(HERE / "kafka" / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={layout.libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise InfraError(f"Maven could not resolve the Kafka jars:\n{result.stdout[-3000:]}{result.stderr}")
    marker.write_text(wanted)


def kafka_config(layout: Layout) -> Path:
    config = layout.state / "kafka" / "server.properties"
    config.parent.mkdir(parents=True, exist_ok=True)
    template = (HERE / "kafka" / "server.properties").read_text()
    config.write_text(
        template.format(
            port=layout.kafka_port,
            controller_port=layout.controller_port,
            data=layout.state / "kafka" / "data",
        )
    )
    return config


def java_cmd(layout: Layout, main: str, *args: str, heap: str = "512m") -> list[str]:
    java = require_tool("java", "run the Kafka broker")
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={HERE / 'kafka' / 'log4j2.properties'}",
        "-cp",
        f"{layout.libs}/*",
        main,
        *args,
    ]


def format_storage(layout: Layout, config: Path) -> None:
    if (layout.state / "kafka" / "data" / "meta.properties").exists():
        return
    cluster_id = _kafka_cluster_id()
    cmd = java_cmd(layout, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), heap="256m")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise InfraError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


def _kafka_cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def kafka_up(layout: Layout) -> None:
    if running_pid(layout.pidfile("kafka")) and kafka_metadata_ok(layout.kafka_port):
        print(f"kafka      already running on 127.0.0.1:{layout.kafka_port}")
        return
    stop(layout, "kafka")
    ensure_kafka_jars(layout)
    for port in (layout.kafka_port, layout.controller_port):
        ensure_port_free(port, "Kafka", "GOGLOBAL_KAFKA_PORT")
    config = kafka_config(layout)
    format_storage(layout, config)
    proc = spawn(layout, "kafka", java_cmd(layout, "kafka.Kafka", str(config), heap="768m"))
    wait_until(layout, "kafka", proc, lambda: kafka_metadata_ok(layout.kafka_port))
    print(f"kafka      ready on 127.0.0.1:{layout.kafka_port}")


# --- FerretDB ----------------------------------------------------------------------------------------


def ensure_ferretdb(layout: Layout) -> None:
    """`go install ...@v1.24.2` alone yields a binary that panics at start (its build/version/version.txt is
    generated by FerretDB's release tooling), so the pinned module is fetched through the Go module proxy,
    the version file is written, and the command is built from that copy."""
    if layout.ferretdb.exists():
        return
    go = require_tool("go", "build FerretDB")
    print(f"building FerretDB {FERRETDB_VERSION} with Go (first run only, a few minutes)...", flush=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    fetched = _run([go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"], env, "fetching")
    source = layout.cache / "ferretdb-src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(json.loads(fetched)["Dir"], source)
    for path in source.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (source / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    layout.ferretdb.parent.mkdir(parents=True, exist_ok=True)
    _run([go, "build", "-C", str(source), "-o", str(layout.ferretdb), "./cmd/ferretdb"], env, "building")


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise InfraError(f"{what} FerretDB failed ({' '.join(argv)}):\n{result.stderr[-3000:]}")
    return result.stdout


def mongo_up(layout: Layout) -> None:
    if running_pid(layout.pidfile("ferretdb")) and mongo_ping_ok(layout.mongo_port):
        print(f"ferretdb   already running on 127.0.0.1:{layout.mongo_port}")
        return
    stop(layout, "ferretdb")
    ensure_ferretdb(layout)
    ensure_port_free(layout.mongo_port, "FerretDB", "GOGLOBAL_MONGO_PORT")
    data = layout.state / "ferretdb"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(layout.ferretdb),
        "--handler=sqlite",
        # FerretDB runs SQLite in WAL mode; synchronous(normal) keeps every committed write across a crash or a
        # SIGKILL of FerretDB (the faults the chaos tests inject) and skips the fsync per commit, which only
        # protects against losing the machine itself. That is the local stack's job; production runs MongoDB 7.
        f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
        f"--listen-addr=127.0.0.1:{layout.mongo_port}",
        f"--state-dir={data}",
        "--telemetry=disable",
        "--log-level=warn",
        "--debug-addr=-",
    ]
    proc = spawn(layout, "ferretdb", argv)
    wait_until(layout, "ferretdb", proc, lambda: mongo_ping_ok(layout.mongo_port))
    print(f"ferretdb   ready on 127.0.0.1:{layout.mongo_port}")


# --- commands ----------------------------------------------------------------------------------------


def up(layout: Layout, only: str | None) -> None:
    started = time.monotonic()
    if only in (None, "ferretdb"):
        mongo_up(layout)
    if only in (None, "kafka"):
        kafka_up(layout)
    print(f"infrastructure ready in {time.monotonic() - started:.1f}s")
    print(f"  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{layout.kafka_port}")
    print(f"  MONGODB_URI=mongodb://127.0.0.1:{layout.mongo_port}/")


def down(layout: Layout, only: str | None) -> None:
    for name in ("kafka", "ferretdb"):
        if only in (None, name):
            stop(layout, name)


def status(layout: Layout) -> int:
    kafka = kafka_metadata_ok(layout.kafka_port)
    mongo = mongo_ping_ok(layout.mongo_port)
    print(f"kafka      127.0.0.1:{layout.kafka_port}  {'up' if kafka else 'DOWN'}")
    print(f"ferretdb   127.0.0.1:{layout.mongo_port}  {'up' if mongo else 'DOWN'}")
    return 0 if kafka and mongo else 1


def main(argv: list[str]) -> int:
    commands, parts = {"up", "down", "status"}, {"kafka", "ferretdb"}
    if not 2 <= len(argv) <= 3 or argv[1] not in commands or (len(argv) == 3 and argv[2] not in parts):
        print(f"usage: {argv[0]} up|down|status [kafka|ferretdb]", file=sys.stderr)
        return 2
    only = argv[2] if len(argv) == 3 else None
    try:
        layout = Layout.from_env()
        if argv[1] == "up":
            up(layout, only)
        elif argv[1] == "down":
            down(layout, only)
        else:
            return status(layout)
    except InfraError as exc:
        print(f"infra: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
