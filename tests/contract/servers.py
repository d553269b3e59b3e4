"""The servers the store contract suite runs against, and how the suite starts the ones it owns.

- the default server: whatever the `infra` fixture yields (today FerretDB or nx-27017 on the native stack, MongoDB 7
  under testcontainers); the suite only connects to it;
- mongo-java-server's in-memory backend, a second, independent implementation of the wire protocol, resolved from
  Maven Central by deploy/local/mongo-java-server/pom.xml and started by deploy/local/mongo-java-server/Main.java;
- a private nx-27017 for the durability check, which must SIGKILL and restart the server it writes to.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.support import REPO, TIME_SCALE, free_port

MJS_DIR = REPO / "deploy" / "local" / "mongo-java-server"
MJS_READY_S = 120.0  # the first start compiles Main.java and warms up a JVM on a busy 2-core machine
MVN_TIMEOUT_S = 240.0  # inside pytest-timeout's 300 s for the first test that needs the server
NX_READY_S = 60.0
NX_27017_ENV = "GOGLOBAL_NX27017_BIN"


Doc = dict[str, object]


class Unavailable(Exception):
    """A tool the suite needs is missing on this machine: the caller skips with this message."""


@dataclass(frozen=True)
class Server:
    """One server under test. `implementation` keys the table of documented known failures."""

    name: str
    implementation: str
    uri: str


def state_dir() -> Path:
    return Path(os.environ.get("GOGLOBAL_STATE_DIR", REPO / ".state")).resolve()


def cache_dir() -> Path:
    return Path(os.environ.get("GOGLOBAL_CACHE_DIR", state_dir())).resolve()


def ping(uri: str, timeout_ms: int = 1000) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, directConnection=True
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def identify(uri: str) -> str:
    """Which implementation answers at `uri`: ferretdb, nx-27017, mongo-java-server or mongodb."""
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        info = client.admin.command("buildInfo")
    except PyMongoError:
        return "unknown"
    finally:
        client.close()
    if "ferretdbVersion" in info:
        return "ferretdb"
    if str(info.get("process", "")).replace("_", "-") == "nx-27017":
        return "nx-27017"
    if "gitVersion" in info and "modules" in info:
        return "mongodb"
    return "unknown"


class Process:
    """A server process the suite started: its own session, a log file, stopped by pid only."""

    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True
            )

    def wait_ready(self, check: Callable[[], bool], deadline_s: float, what: str) -> None:
        deadline_s *= TIME_SCALE
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.proc.returncode} during start-up\n{self.tail()}")
            if check():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{what} did not answer within {deadline_s:.0f}s\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, no chance to flush or close anything."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:] if self.log.exists() else []
        return f"--- last lines of {self.log} ---\n" + "\n".join(text)


# --- mongo-java-server -------------------------------------------------------------------------------


def mongo_java_server_lib() -> Path:
    """Copies the jars once per version of the pom into <cache>/mongo-java-server/lib (the marker holds the pom's
    hash). Maven's local repository (~/.m2) is reused, so later runs need no network and no Maven at all."""
    if shutil.which("java") is None:
        raise Unavailable("mongo-java-server needs Java 17+: `java` not found on PATH")
    pom = MJS_DIR / "pom.xml"
    lib = cache_dir() / "mongo-java-server" / "lib"
    marker = lib / ".complete"
    wanted = hashlib.sha256(pom.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == wanted:
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Unavailable(f"mongo-java-server's jars are not in {lib} yet and `mvn` (Maven) is not on PATH")
    shutil.rmtree(lib, ignore_errors=True)
    argv = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
    argv += [f"-DoutputDirectory={lib}", "-DincludeScope=runtime"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=MVN_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"Maven could not resolve mongo-java-server:\n{result.stdout[-3000:]}{result.stderr}")
    marker.write_text(wanted)
    return lib


def start_mongo_java_server(log_dir: Path) -> tuple[Process, str]:
    lib = mongo_java_server_lib()
    java = shutil.which("java")
    assert java is not None
    port = free_port()
    argv = [java, "-Xmx512m", "-XX:+UseSerialGC", "-cp", f"{lib}/*", str(MJS_DIR / "Main.java"), str(port)]
    process = Process(argv, log_dir / "mongo-java-server.log")
    uri = f"mongodb://127.0.0.1:{port}/"
    process.wait_ready(lambda: ping(uri), MJS_READY_S, "mongo-java-server")
    return process, uri


# --- nx-27017 ----------------------------------------------------------------------------------------


def nx_27017_executable() -> Path | None:
    """Where the project's nx-27017 lives, first found wins:

    1. GOGLOBAL_NX27017_BIN (an executable path);
    2. deploy/local/infra.py: its `nx_27017_executable()` if it defines one, else `Layout.from_env().nx_venv`'s
       bin/nx-27017 (the isolated venv `infra.py up` installs; present once the stack has been started);
    3. <cache or state dir>/nx-27017/venv/bin/nx-27017, the same place if infra.py cannot be read;
    4. `nx-27017` on PATH.
    """
    explicit = os.environ.get(NX_27017_ENV)
    if explicit:
        return Path(explicit) if os.access(explicit, os.X_OK) else None
    from_infra = _infra_nx_27017()
    if from_infra is not None:
        return from_infra
    for base in (cache_dir(), state_dir()):
        candidate = base / "nx-27017" / "venv" / "bin" / "nx-27017"
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nx-27017")
    return Path(found) if found else None


def _infra_nx_27017() -> Path | None:
    spec = importlib.util.spec_from_file_location("_goglobal_local_infra", REPO / "deploy" / "local" / "infra.py")
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        locate = getattr(module, "nx_27017_executable", None)
        if callable(locate):
            found = locate()
        else:
            venv = getattr(module.Layout.from_env(), "nx_venv", None)
            found = Path(venv) / "bin" / "nx-27017" if venv is not None else None
    except Exception:  # infra.py is edited concurrently; any problem there means "not provided"
        return None
    if found is None or not os.access(str(found), os.X_OK):
        return None
    return Path(str(found))


def start_nx_27017(executable: Path, data_dir: Path, port: int, log_dir: Path) -> Process:
    """nx-27017 in the foreground as deploy/local/infra.py runs it: one SQLite file per database under `data_dir`,
    WAL journal; its log goes to stderr (our log file), its own --log-file copy nowhere."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pidfile = log_dir / "nx-27017.pid"
    pidfile.unlink(missing_ok=True)  # left by a SIGKILL; nx-27017 refuses to start while its PID is alive
    argv = [str(executable), "--data-dir", str(data_dir), "-p", str(port), "--host", "127.0.0.1"]
    argv += ["--journal-mode", "WAL", "--log-file", os.devnull, "--pid-file", str(pidfile)]
    process = Process(argv, log_dir / "nx-27017.log", cwd=data_dir)
    process.wait_ready(lambda: ping(f"mongodb://127.0.0.1:{port}/"), NX_READY_S, "nx-27017")
    return process
