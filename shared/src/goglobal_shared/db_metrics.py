"""Counts every command a service sends to the database (PyMongo command monitoring), as
`goglobal_db_commands_total{service, command, collection}`.

The labels stay bounded: `command` is the command's name (find, insert, update, delete, findAndModify,
aggregate, getMore, count, createIndexes, ping, ...), a fixed set in the code, and `collection` is the
collection the command names (a service's collections are fixed; tests and benchmarks vary database names,
which are not a label), or "" for a command that names none (ping, buildInfo, `aggregate: 1`, endSessions).

The listener runs on the event loop for each command sent, before the command goes out: it does one dict
lookup and one counter increment (the labelled child is looked up in Prometheus once per label set), and it
ignores the succeeded and failed events. A command counts when it is sent, whatever its outcome; pymongo's
own connection handshakes and heartbeats are not commands to it and are not counted.
"""

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter
from pymongo import monitoring

from goglobal_shared.metrics import DB_COMMANDS


def collection_of(command_name: str, command: Mapping[str, Any]) -> str:
    """The collection a command names: its first value when that is a string (`{"find": "partners", ...}`),
    `collection` for getMore (whose first value is the cursor id), "" otherwise."""
    target = command.get("collection") if command_name == "getMore" else command.get(command_name)
    return target if isinstance(target, str) else ""


class CommandCounter(monitoring.CommandListener):
    """Counts the commands of one client in `DB_COMMANDS` under the `service` label."""

    def __init__(self, service: str, counter: Counter = DB_COMMANDS) -> None:
        self.service = service
        self._counter = counter
        self._children: dict[tuple[str, str], Counter] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        key = (name, collection_of(name, event.command))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(self.service, *key)
        child.inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
