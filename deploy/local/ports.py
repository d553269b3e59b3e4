"""The local stack's ports: one variable each, and everything derived from them.

Standard library only (infra.py runs before any virtual environment exists). Read by deploy/local/infra.py (where
Kafka and nx-27017 listen), run.py (the services' HTTP ports and the URIs they and seed.py connect to, the banner),
the tests' and the benchmarks' native stacks.

    GOGLOBAL_KAFKA_PORT          Kafka's broker (default 9092); its KRaft controller listens on the next port
    GOGLOBAL_MONGO_PORT          nx-27017 (default 27017)
    GOGLOBAL_INTAKE_PORT         intake's HTTP API, the console and the CLI's address (default 8000)
    GOGLOBAL_MATCHING_PORT       matching's HTTP port (default 8001)
    GOGLOBAL_NOTIFICATIONS_PORT  notifications' HTTP port (default 8002)

Each is an integer from 1024 to 65535, all distinct (the controller's port included); anything else is refused
with a message naming the variable.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOST = "127.0.0.1"
LOWEST, HIGHEST = 1024, 65535
SERVICES = ("intake", "matching", "notifications")
# field: (variable, default, what listens there)
VARIABLES: dict[str, tuple[str, int, str]] = {
    "kafka": ("GOGLOBAL_KAFKA_PORT", 9092, "Kafka"),
    "mongo": ("GOGLOBAL_MONGO_PORT", 27017, "nx-27017"),
    "intake": ("GOGLOBAL_INTAKE_PORT", 8000, "intake"),
    "matching": ("GOGLOBAL_MATCHING_PORT", 8001, "matching"),
    "notifications": ("GOGLOBAL_NOTIFICATIONS_PORT", 8002, "notifications"),
}


class PortError(ValueError):
    """A port variable that is not a usable port, or two that collide."""


@dataclass(frozen=True)
class Binding:
    """One port the stack binds, and the variable that moves it."""

    port: int
    what: str
    variable: str

    def describe(self) -> str:
        return f"{self.port} ({self.what}; {self.variable})"


@dataclass(frozen=True)
class Ports:
    kafka: int = 9092
    mongo: int = 27017
    intake: int = 8000
    matching: int = 8001
    notifications: int = 8002

    def __post_init__(self) -> None:
        for field, (variable, _default, _what) in VARIABLES.items():
            value = getattr(self, field)
            if not LOWEST <= value <= HIGHEST:
                raise PortError(f"{variable}={value} is outside {LOWEST}-{HIGHEST}")
        if self.kafka == HIGHEST:
            raise PortError(f"GOGLOBAL_KAFKA_PORT={self.kafka} leaves no port for Kafka's controller (the next one)")
        seen: dict[int, Binding] = {}
        for binding in self.bindings():
            if (other := seen.get(binding.port)) is not None:
                raise PortError(
                    f"{binding.variable} gives port {binding.port} to {binding.what}, "
                    f"but {other.what} already has it ({other.variable}); each needs a port of its own"
                )
            seen[binding.port] = binding

    @property
    def controller(self) -> int:
        return self.kafka + 1

    def infra_bindings(self) -> list[Binding]:
        return [
            Binding(self.kafka, "Kafka", "GOGLOBAL_KAFKA_PORT"),
            Binding(self.controller, "Kafka's controller, on the next port", "GOGLOBAL_KAFKA_PORT"),
            Binding(self.mongo, "nx-27017", "GOGLOBAL_MONGO_PORT"),
        ]

    def service_bindings(self) -> list[Binding]:
        return [Binding(self.http_port(name), name, VARIABLES[name][0]) for name in SERVICES]

    def bindings(self) -> list[Binding]:
        return [*self.infra_bindings(), *self.service_bindings()]

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"{HOST}:{self.kafka}"

    @property
    def mongodb_uri(self) -> str:
        return f"mongodb://{HOST}:{self.mongo}/"

    def http_port(self, service: str) -> int:
        port: int = getattr(self, service)
        return port

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.http_port(service)}"

    @property
    def api_url(self) -> str:
        """intake's address: the API, the console, the CLI's GOGLOBAL_API_URL, the walk's $API."""
        return self.url("intake")

    @property
    def service_urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in SERVICES}

    def infra_env(self) -> dict[str, str]:
        """What every service (and seed.py) connects to."""
        return {
            "GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "GOGLOBAL_MONGODB_URI": self.mongodb_uri,
        }

    def service_env(self, service: str) -> dict[str, str]:
        """One service's environment for this stack: its HTTP port, the infrastructure, the other services."""
        return {
            **self.infra_env(),
            "GOGLOBAL_HTTP_PORT": str(self.http_port(service)),
            "GOGLOBAL_SERVICE_URLS": json.dumps(self.service_urls),  # intake's console
            "GOGLOBAL_PORTAL_URL": self.api_url,  # notifications' e-mails link to it
            "GOGLOBAL_API_URL": self.api_url,  # the CLI
        }

    def env(self) -> dict[str, str]:
        """The five variables that give these ports, for a child process."""
        return {variable: str(getattr(self, field)) for field, (variable, _d, _w) in VARIABLES.items()}


def _parse(variable: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit():
        raise PortError(f"{variable}={raw!r} is not a port number (an integer from {LOWEST} to {HIGHEST})")
    return int(text)


def from_env(environ: Mapping[str, str] | None = None) -> Ports:
    """The ports the environment asks for, defaults where it names none; PortError names a refused variable."""
    environ = os.environ if environ is None else environ
    values = {}
    for field, (variable, default, _what) in VARIABLES.items():
        raw = environ.get(variable, "")
        values[field] = _parse(variable, raw) if raw.strip() else default
    return Ports(**values)


def port_in_use(port: int) -> bool:
    """Something accepts connections there, or the port cannot be bound (held without listening)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((HOST, port)) == 0:
            return True
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def taken(bindings: Iterable[Binding]) -> list[Binding]:
    return [binding for binding in bindings if port_in_use(binding.port)]


def free_port(avoid: Iterable[int] = ()) -> int:
    """A port the system has free now (for a suggestion or a private stack), not one of `avoid`."""
    avoid = set(avoid)
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid and LOWEST <= port < HIGHEST and not port_in_use(port + 1):
            return port
    raise PortError("found no free port on 127.0.0.1")


def busy_message(busy: list[Binding], command: str = "make run") -> str:
    """One message for every taken port: which, what wanted it, the variable that moves it, and a free port."""
    lines = [f"{len(busy)} port(s) on {HOST} that {command} needs are taken by other processes:"]
    lines += [f"  {binding.describe()}" for binding in busy]
    suggestion: dict[str, int] = {}
    used = {b.port for b in busy}
    for binding in busy:
        if binding.variable not in suggestion:
            suggestion[binding.variable] = port = free_port(used)
            used |= {port, port + 1}
    assignments = " ".join(f"{variable}={port}" for variable, port in suggestion.items())
    lines.append(f"Stop what holds them, or move them, e.g.: {assignments} {command}")
    return "\n".join(lines)
