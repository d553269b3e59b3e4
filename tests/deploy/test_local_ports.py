"""deploy/local/ports.py: the five port variables, what is derived from them, and the messages that name them."""

import json
import socket
import subprocess
import sys

import pytest

from tests.support import REPO, ports

RUN = [sys.executable, str(REPO / "deploy" / "local" / "run.py")]


def test_defaults_and_what_derives_from_them() -> None:
    stack = ports.from_env({})
    assert stack == ports.Ports(9092, 27017, 8000, 8001, 8002)
    assert stack.controller == 9093
    assert stack.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert stack.mongodb_uri == "mongodb://127.0.0.1:27017/"
    assert stack.api_url == "http://127.0.0.1:8000"


def test_every_setting_follows_the_port_variables() -> None:
    stack = ports.from_env(
        {
            "GOGLOBAL_KAFKA_PORT": "19092",
            "GOGLOBAL_MONGO_PORT": "28017",
            "GOGLOBAL_INTAKE_PORT": "18000",
            "GOGLOBAL_MATCHING_PORT": "18001",
            "GOGLOBAL_NOTIFICATIONS_PORT": " 18002 ",
        }
    )
    env = stack.service_env("matching")
    assert env["GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert env["GOGLOBAL_MONGODB_URI"] == "mongodb://127.0.0.1:28017/"
    assert env["GOGLOBAL_HTTP_PORT"] == "18001"
    assert env["GOGLOBAL_PORTAL_URL"] == env["GOGLOBAL_API_URL"] == "http://127.0.0.1:18000"
    assert json.loads(env["GOGLOBAL_SERVICE_URLS"]) == {
        "intake": "http://127.0.0.1:18000",
        "matching": "http://127.0.0.1:18001",
        "notifications": "http://127.0.0.1:18002",
    }
    assert ports.from_env(stack.env()) == stack  # the variables a child gets give the same ports


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"GOGLOBAL_MONGO_PORT": "mongo"}, "GOGLOBAL_MONGO_PORT='mongo' is not a port number"),
        ({"GOGLOBAL_INTAKE_PORT": "-1"}, "GOGLOBAL_INTAKE_PORT='-1' is not a port number"),
        ({"GOGLOBAL_MATCHING_PORT": "80"}, "GOGLOBAL_MATCHING_PORT=80 is outside 1024-65535"),
        ({"GOGLOBAL_NOTIFICATIONS_PORT": "70000"}, "GOGLOBAL_NOTIFICATIONS_PORT=70000 is outside 1024-65535"),
        ({"GOGLOBAL_KAFKA_PORT": "65535"}, "GOGLOBAL_KAFKA_PORT=65535 leaves no port for Kafka's controller"),
        ({"GOGLOBAL_MATCHING_PORT": "8000"}, "GOGLOBAL_MATCHING_PORT gives port 8000 to matching, but intake"),
        ({"GOGLOBAL_MONGO_PORT": "9093"}, "GOGLOBAL_MONGO_PORT gives port 9093 to nx-27017, but Kafka's controller"),
        ({"GOGLOBAL_KAFKA_PORT": "7999"}, "GOGLOBAL_INTAKE_PORT gives port 8000 to intake, but Kafka's controller"),
    ],
)
def test_a_refused_setting_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ports.PortError) as refused:
        ports.from_env(environ)
    assert named in str(refused.value)


def test_the_busy_message_lists_each_taken_port_with_its_variable() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        stack = ports.Ports(intake=port)
        busy = ports.taken(stack.service_bindings())
        assert [b.port for b in busy] == [port] or {8001, 8002} & {b.port for b in busy}, busy
        message = ports.busy_message([b for b in busy if b.port == port])
    assert f"{port} (intake; GOGLOBAL_INTAKE_PORT)" in message
    suggested = int(message.split("GOGLOBAL_INTAKE_PORT=")[1].split()[0])
    assert suggested != port and not ports.port_in_use(suggested)


def test_run_refuses_a_taken_http_port_before_starting_anything(tmp_path: object) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        chosen = [port]
        for _ in range(2):
            chosen.append(ports.free_port(chosen))
        env = {
            "PATH": "/usr/bin:/bin",
            "GOGLOBAL_INTAKE_PORT": str(chosen[1]),
            "GOGLOBAL_MATCHING_PORT": str(port),
            "GOGLOBAL_NOTIFICATIONS_PORT": str(chosen[2]),
        }
        done = subprocess.run(RUN, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 69, done
    assert f"{port} (matching; GOGLOBAL_MATCHING_PORT)" in done.stderr, done.stderr
    assert "GOGLOBAL_INTAKE_PORT" not in done.stderr.split("e.g.")[0], done.stderr


def test_run_names_a_refused_port_variable() -> None:
    done = subprocess.run(
        RUN, env={"PATH": "/usr/bin:/bin", "GOGLOBAL_KAFKA_PORT": "kafka"}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 64 and "GOGLOBAL_KAFKA_PORT='kafka'" in done.stderr, done
