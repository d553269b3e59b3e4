"""Native Kafka (KRaft) + nx-27017 (a MongoDB wire-protocol server on SQLite) for machines without a Docker engine.

Standard library only, so it runs before any virtual environment exists; nx-27017 gets a virtual environment of its
own, installed with pip from the pinned deploy/local/nx-27017/requirements.txt.

    python3 deploy/local/infra.py up|down|status [kafka|database]
    python3 deploy/local/infra.py preflight [services]

`preflight` checks, before anything is installed or started, that every port the stack will bind is free: the
infrastructure's (unless this stack already answers there) and, with `services`, the three services' HTTP ports;
one message lists each taken port with the variable that moves it.

`database` may also be written `mongo`, `nx-27017` or `ferretdb` (its name before nx-27017 replaced FerretDB).

Environment:
    GOGLOBAL_STATE_DIR   where data, pid files and logs live (default: <repo>/.state)
    GOGLOBAL_CACHE_DIR   where the downloaded jars and nx-27017's virtual environment live (default: the state
                         directory), so a second stack (e.g. the chaos tests') reuses them
    GOGLOBAL_KAFKA_PORT  broker port on 127.0.0.1 (default 9092); the controller uses the next port
    GOGLOBAL_MONGO_PORT  nx-27017's port on 127.0.0.1 (default 27017)
    and the services' GOGLOBAL_INTAKE_PORT, GOGLOBAL_MATCHING_PORT, GOGLOBAL_NOTIFICATIONS_PORT: see ports.py
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ports  # deploy/local/ports.py, beside this file

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NX_REQUIREMENTS = HERE / "nx-27017" / "requirements.txt"
START_TIMEOUT_S = 180.0
DATABASE = "database"
PARTS = {"kafka": "kafka", DATABASE: DATABASE, "mongo": DATABASE, "nx-27017": DATABASE, "ferretdb": DATABASE}
LEGACY_FERRETDB = "ferretdb"  # pid file name of the FerretDB that earlier versions of this script started


class InfraError(RuntimeError):
    pass


@dataclass(frozen=True)
class Layout:
    state: Path
    cache: Path
    kafka_port: int
    controller_port: int
    mongo_port: int
    ports: ports.Ports

    @classmethod
    def from_env(cls) -> Layout:
        state = Path(os.environ.get("GOGLOBAL_STATE_DIR", REPO / ".state")).resolve()
        cache = Path(os.environ.get("GOGLOBAL_CACHE_DIR", state)).resolve()
        try:
            chosen = ports.from_env()
        except ports.PortError as exc:
            raise InfraError(str(exc)) from None
        return cls(state, cache, chosen.kafka, chosen.controller, chosen.mongo, chosen)

    @property
    def libs(self) -> Path:
        return self.cache / "kafka-libs"

    @property
    def nx_home(self) -> Path:
        return self.cache / "nx-27017"

    @property
    def nx_venv(self) -> Path:
        return self.nx_home / "venv"

    @property
    def nx_data(self) -> Path:
        return self.state / "nx-data"

    @property
    def kafka_config(self) -> Path:
        return self.state / "kafka" / "server.properties"

    def pidfile(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def marker(self, name: str) -> str:
        """A piece of the command line that only this stack's process of that name has (its config or data
        path), so that a pid file left behind by a SIGKILL never makes us signal an unrelated process that
        was given the same PID later."""
        return {
            "kafka": str(self.kafka_config),
            "nx-27017": str(self.nx_data),
            LEGACY_FERRETDB: str(self.state / "ferretdb"),
        }[name]


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
    """Sends OP_MSG {ping: 1, $db: "admin"} and checks the reply's ok field (what pymongo's ping does)."""
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
    return _ok_value(reply[12 + 5 :]) == 1.0


def _ok_value(doc: bytes) -> float:
    """The top-level `ok` of a BSON document, whichever numeric type the server chose for it."""
    formats = {0x01: "<d", 0x10: "<i", 0x12: "<q", 0x08: "<?"}
    for kind, fmt in formats.items():
        marker = doc.find(bytes([kind]) + b"ok\x00")
        if marker >= 0:
            size = struct.calcsize(fmt)
            return float(struct.unpack(fmt, doc[marker + 4 : marker + 4 + size])[0])
    return 0.0


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
    return ports.port_in_use(port)


# --- processes ---------------------------------------------------------------------------------------


def is_ours(pid: int, marker: str) -> bool:
    """Alive (not a zombie) and, where /proc tells, still running the command line we started."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): trust the pid file
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def running_pid(layout: Layout, name: str) -> int | None:
    try:
        pid = int(layout.pidfile(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_ours(pid, layout.marker(name)) else None


@dataclass(frozen=True)
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def spawn(layout: Layout, name: str, argv: list[str], *, writes_own_pidfile: bool = False) -> Process:
    log = layout.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    layout.pidfile(name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=_clean_env(),
        )
    if not writes_own_pidfile:
        layout.pidfile(name).write_text(str(proc.pid))
    return Process(name, proc, log)


def _clean_env() -> dict[str, str]:
    """The caller's environment without what would make a Python child use another interpreter's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def stop(layout: Layout, name: str) -> None:
    """Stops this stack's process of that name. A pid file whose process is gone, or whose PID now belongs
    to another program, is only deleted."""
    pid = running_pid(layout, name)
    if pid is None:
        layout.pidfile(name).unlink(missing_ok=True)
        return
    marker = layout.marker(name)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and is_ours(pid, marker):
        time.sleep(0.2)
    if is_ours(pid, marker):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and is_ours(pid, marker):
            time.sleep(0.1)
    layout.pidfile(name).unlink(missing_ok=True)
    print(f"stopped {name} (pid {pid})")


def wait_until(started: Process, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if started.proc.poll() is not None:
            raise InfraError(f"{started.name} exited during start-up.\n{tail(started.log)}")
        time.sleep(0.2)
    raise InfraError(f"{started.name} did not answer within {START_TIMEOUT_S:.0f}s.\n{tail(started.log)}")


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


@contextlib.contextmanager
def cache_lock(directory: Path) -> Iterator[None]:
    """Stacks that share a cache directory (the chaos tests', the benchmarks') install into it one at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- Kafka -------------------------------------------------------------------------------------------


def ensure_kafka_jars(layout: Layout) -> None:
    """Resolves the jars once per version of the pom (the marker holds the pom's hash)."""
    pom = HERE / "kafka" / "pom.xml"
    marker = layout.libs / ".complete"
    wanted = hashlib.sha256(pom.read_bytes()).hexdigest()
    with cache_lock(layout.cache):
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
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={layout.libs}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise InfraError(f"Maven could not resolve the Kafka jars:\n{result.stdout[-3000:]}{result.stderr}")
        marker.write_text(wanted)


def write_kafka_config(layout: Layout) -> Path:
    config = layout.kafka_config
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
    cluster_id = kafka_cluster_id()
    cmd = java_cmd(layout, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), heap="256m")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise InfraError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


def kafka_cluster_id() -> str:
    """A random id as Kafka's own `Uuid.randomUuid` makes it: 16 bytes in URL-safe base64, never starting with "-",
    which the storage tool's command line would read as an option (1 format in 64 failed that way)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_running(layout: Layout) -> bool:
    if running_pid(layout, "kafka") and kafka_metadata_ok(layout.kafka_port):
        print(f"kafka      already running on 127.0.0.1:{layout.kafka_port}")
        return True
    return False


def kafka_stop(layout: Layout) -> None:
    stop(layout, "kafka")


def kafka_check_ports(layout: Layout) -> None:
    for port in (layout.kafka_port, layout.controller_port):
        ensure_port_free(port, "Kafka", "GOGLOBAL_KAFKA_PORT")


def kafka_prepare(layout: Layout) -> None:
    ensure_kafka_jars(layout)
    format_storage(layout, write_kafka_config(layout))


def kafka_start(layout: Layout) -> Process:
    kafka_check_ports(layout)
    argv = java_cmd(layout, "kafka.Kafka", str(layout.kafka_config), heap="768m")
    return spawn(layout, "kafka", argv)


def kafka_ready(layout: Layout, started: Process) -> None:
    wait_until(started, lambda: kafka_metadata_ok(layout.kafka_port))
    print(f"kafka      ready on 127.0.0.1:{layout.kafka_port}")


# --- nx-27017 (the database) -------------------------------------------------------------------------


def ensure_nx_venv(layout: Layout) -> Path:
    """Installs the pinned requirements into a virtual environment of nx-27017's own, again whenever the
    requirements file changes (the stamp holds its hash) or the interpreter the environment was made from
    is gone. --no-deps and `pip check` keep the file honest: everything installed is pinned there."""
    venv = layout.nx_venv
    stamp = layout.nx_home / "installed.sha256"
    wanted = hashlib.sha256(NX_REQUIREMENTS.read_bytes()).hexdigest()
    server = venv / "bin" / "nx-27017"
    with cache_lock(layout.nx_home):
        if (
            stamp.exists()
            and stamp.read_text().strip() == wanted
            and server.exists()
            and (venv / "bin" / "python").resolve().exists()
        ):
            return server
        if sys.version_info < (3, 11):  # noqa: UP036 - python3 on PATH may be older than the project's
            raise InfraError(f"nx-27017's pinned pymongo needs Python 3.11 or newer; this is {sys.version.split()[0]}")
        print(f"installing nx-27017 into {venv} from {NX_REQUIREMENTS.relative_to(REPO)}...", flush=True)
        stamp.unlink(missing_ok=True)
        shutil.rmtree(venv, ignore_errors=True)
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
        _install_step(
            [sys.executable, "-m", "venv", str(venv)],
            "creating the virtual environment",
            "on Debian or Ubuntu: apt-get install python3-venv",
        )
        _install_step(
            [*pip, "install", "--quiet", "--no-deps", "-r", str(NX_REQUIREMENTS)],
            "installing the pinned requirements",
            "is PyPI reachable?",
        )
        _install_step(
            [*pip, "check"],
            "checking that every dependency is pinned",
            f"add the missing packages to {NX_REQUIREMENTS.relative_to(REPO)} with exact versions",
        )
        stamp.write_text(wanted + "\n")
    return server


def _install_step(argv: list[str], what: str, hint: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=_clean_env())
    if result.returncode != 0:
        raise InfraError(f"nx-27017: {what} failed ({hint}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def mongo_running(layout: Layout) -> bool:
    if running_pid(layout, "nx-27017") and mongo_ping_ok(layout.mongo_port):
        print(f"nx-27017   already running on 127.0.0.1:{layout.mongo_port}")
        return True
    legacy = running_pid(layout, LEGACY_FERRETDB)
    if legacy and mongo_ping_ok(layout.mongo_port):
        # Left by the version of this script before nx-27017: reused rather than stopped under whoever uses it.
        print(
            f"ferretdb   still running on 127.0.0.1:{layout.mongo_port} (pid {legacy}, started before nx-27017 "
            "replaced it); reused. `infra.py down database` stops it, the next `up` starts nx-27017"
        )
        return True
    return False


def mongo_stop(layout: Layout) -> None:
    stop(layout, "nx-27017")
    stop(layout, LEGACY_FERRETDB)


def mongo_check_ports(layout: Layout) -> None:
    ensure_port_free(layout.mongo_port, "nx-27017", "GOGLOBAL_MONGO_PORT")


def mongo_prepare(layout: Layout) -> None:
    ensure_nx_venv(layout)


def mongo_start(layout: Layout) -> Process:
    mongo_check_ports(layout)
    layout.nx_data.mkdir(parents=True, exist_ok=True)
    # nx-27017 writes its own pid file and refuses to start ("already running") while the PID in it is alive;
    # after a SIGKILL the file stays, and its PID may since belong to another process. mongo_stop() (called
    # before this) made sure the server is gone, so a file still there is stale.
    layout.pidfile("nx-27017").unlink(missing_ok=True)
    argv = [
        str(layout.nx_venv / "bin" / "nx-27017"),
        "--data-dir",
        str(layout.nx_data),  # one SQLite file per database
        "-p",
        str(layout.mongo_port),
        "--host",
        "127.0.0.1",
        # WAL with synchronous=NORMAL (neosqlite's setting for WAL): every acknowledged write survives a crash
        # or a SIGKILL of the server (the faults the chaos tests inject); without an fsync per commit, only
        # losing the machine itself can lose the last commits. Production runs MongoDB 7.
        "--journal-mode",
        "WAL",
        # It logs every record twice, to stderr and to --log-file, and a failed start (say, the port was taken
        # meanwhile) only as a traceback on stderr: so stderr goes to logs/nx-27017.log and the copy nowhere.
        "--log-file",
        os.devnull,
        "--pid-file",
        str(layout.pidfile("nx-27017")),
    ]
    return spawn(layout, "nx-27017", argv, writes_own_pidfile=True)


def mongo_ready(layout: Layout, started: Process) -> None:
    wait_until(started, lambda: mongo_ping_ok(layout.mongo_port))
    print(f"nx-27017   ready on 127.0.0.1:{layout.mongo_port}")


# --- commands ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    running: Callable[[Layout], bool]
    stop: Callable[[Layout], None]
    check_ports: Callable[[Layout], None]
    prepare: Callable[[Layout], None]
    start: Callable[[Layout], Process]
    ready: Callable[[Layout, Process], None]


STEPS = {
    DATABASE: Part(mongo_running, mongo_stop, mongo_check_ports, mongo_prepare, mongo_start, mongo_ready),
    "kafka": Part(kafka_running, kafka_stop, kafka_check_ports, kafka_prepare, kafka_start, kafka_ready),
}


def up(layout: Layout, only: str | None) -> None:
    """Reuses what answers; otherwise checks every port first, then installs (in parallel: Maven and pip),
    then starts the servers together and waits for each to answer."""
    started_at = time.monotonic()
    wanted = [name for name in STEPS if only in (None, name)]
    missing = [name for name in wanted if not STEPS[name].running(layout)]
    for name in missing:
        STEPS[name].stop(layout)  # a process of ours that no longer answers, or only a stale pid file
    for name in missing:
        STEPS[name].check_ports(layout)
    _in_parallel([functools.partial(STEPS[name].prepare, layout) for name in missing])
    started = [(name, STEPS[name].start(layout)) for name in missing]
    for name, process in started:
        STEPS[name].ready(layout, process)
    print(f"infrastructure ready in {time.monotonic() - started_at:.1f}s")
    print(f"  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{layout.kafka_port}")
    print(f"  MONGODB_URI=mongodb://127.0.0.1:{layout.mongo_port}/")


def _in_parallel(tasks: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def run(task: Callable[[], None]) -> None:
        try:
            task()
        except BaseException as exc:  # re-raised below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def preflight(layout: Layout, services: bool) -> None:
    """Every port the stack will bind, checked at once: the infrastructure's, unless this stack (this state
    directory's processes) already answers there and will be reused, and with `services` the HTTP ports."""
    wanted = [] if _ours_answering(layout, "kafka") else layout.ports.infra_bindings()[:2]
    if not _ours_answering(layout, DATABASE):
        wanted += layout.ports.infra_bindings()[2:]
    if services:
        wanted += layout.ports.service_bindings()
    if busy := ports.taken(wanted):
        raise InfraError(ports.busy_message(busy, "make run" if services else "infra.py up"))


def _ours_answering(layout: Layout, part: str) -> bool:
    if part == "kafka":
        return bool(running_pid(layout, "kafka")) and kafka_metadata_ok(layout.kafka_port)
    database = running_pid(layout, "nx-27017") or running_pid(layout, LEGACY_FERRETDB)
    return bool(database) and mongo_ping_ok(layout.mongo_port)


def down(layout: Layout, only: str | None) -> None:
    for name in ("kafka", DATABASE):
        if only in (None, name):
            STEPS[name].stop(layout)


def status(layout: Layout) -> int:
    kafka = kafka_metadata_ok(layout.kafka_port)
    mongo = mongo_ping_ok(layout.mongo_port)
    database = "ferretdb" if running_pid(layout, LEGACY_FERRETDB) else "nx-27017"
    print(f"kafka      127.0.0.1:{layout.kafka_port}  {'up' if kafka else 'DOWN'}")
    print(f"{database:<10} 127.0.0.1:{layout.mongo_port}  {'up' if mongo else 'DOWN'}")
    return 0 if kafka and mongo else 1


def main(argv: list[str]) -> int:
    commands = {"up", "down", "status"}
    preflight_usage = argv[1:2] == ["preflight"] and argv[2:] in ([], ["services"])
    usage = preflight_usage or (2 <= len(argv) <= 3 and argv[1] in commands and (len(argv) == 2 or argv[2] in PARTS))
    if not usage:
        print(
            f"usage: {argv[0]} up|down|status [kafka|database]  (database: also mongo, nx-27017, ferretdb)\n"
            f"       {argv[0]} preflight [services]",
            file=sys.stderr,
        )
        return 2
    only = PARTS[argv[2]] if len(argv) == 3 and argv[1] != "preflight" else None
    try:
        layout = Layout.from_env()
        if argv[1] == "preflight":
            preflight(layout, services=argv[2:] == ["services"])
        elif argv[1] == "up":
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
