# SPDX-License-Identifier: Apache-2.0
"""PROTOCOL.md §1 and §8: every handshake answer a socket client can reach."""
import struct

import pytest
from busclient import (BUSY, DATA, NOT_REGISTERED, NOT_SUPPORTED, OK, Busrtd,
                       connect)


def test_greeting_bytes_and_registration(broker):
    c = broker.raw()
    assert c.read_exact(3) == b"\xeb\x01\x00"
    c.send(b"\xeb\x01\x00")
    assert c.read_exact(1) == b"\x01"
    c.send(b"\x03\x00abc")
    assert c.read_exact(1) == b"\x01"


@pytest.mark.parametrize("greeting", [b"\xec\x01\x00", b"\xeb\x02\x00", b"GET"])
def test_bad_greeting_or_version_answers_not_supported_and_closes(broker, greeting):
    c = broker.raw()
    c.read_exact(3)
    c.send(greeting)
    assert c.read_exact(1)[0] == NOT_SUPPORTED
    assert c.is_closed()


@pytest.mark.parametrize("name", [b"", b".broker", b".x", b"\xff\xfe", b"a\x00b", b"x" * 257])
def test_bad_names_answer_data_and_close(broker, name):
    c = broker.raw()
    assert c.handshake(name) == DATA
    assert c.is_closed()


def test_name_at_limit_is_accepted(broker):
    c = broker.raw()
    assert c.handshake(b"x" * 256) == OK


def test_busy_name(broker):
    a = broker.client("dup")
    c = broker.raw()
    assert c.handshake("dup") == BUSY
    assert c.is_closed()
    assert a.rpc("test")[0] == "reply"  # the holder is undisturbed


def test_force_register_takes_over():
    with Busrtd("--force-register") as b:
        old = b.client("dup")
        new = b.client("dup")
        assert old.is_closed()
        assert new.rpc("test")[0] == "reply"


def test_secondary_needs_primary(broker):
    c = broker.raw()
    assert c.handshake("agent%%w1") == NOT_REGISTERED
    assert c.is_closed()


def test_secondaries_go_with_their_primary(broker):
    p = broker.client("agent")
    between = broker.client("agent!x")  # sorts between agent and agent%%
    s1 = broker.client("agent%%w1")
    s2 = broker.client("agent%%w2")
    other = broker.client("agentx")
    res = other.rpc("client.list")[1]["clients"]
    agent = [c for c in res if c["name"] == "agent"][0]
    assert agent["instances"] == 3
    assert [c["name"] for c in res] == ["agent", "agent!x", "agentx"]  # primaries only
    p.close()
    assert s1.is_closed() and s2.is_closed()
    assert between.rpc("test")[0] == "reply"
    assert other.rpc("test")[0] == "reply"


def test_connection_limit_answers_busy_at_step_5():
    with Busrtd(config="broker:\n  standalone:\n    max_connections: 2\n") as b:
        one = b.client("one")  # noqa: F841
        two = b.client("two")
        c = b.raw()
        assert c.handshake("three") == BUSY
        assert c.is_closed()
        st = two.rpc("stats")[1]
        assert st["rejects_connections"] == 1


def test_handshake_timeout_closes_silent_connection():
    with Busrtd("-t", "0.3") as b:
        c = b.raw()
        c.read_exact(3)
        assert c.is_closed(timeout=3)


def test_tcp_client_has_source_and_port():
    with Busrtd(tcp=True) as b:
        c = b.client("tcpc", tcp=True)
        lst = c.rpc("client.list")[1]["clients"]
        assert lst[0]["kind"] == "tcp"
        assert lst[0]["source"] == "127.0.0.1"
        assert int(lst[0]["port"]) > 0


def test_registration_and_leave_announced_on_broker_info(broker):
    import msgpack
    w = broker.client("watcher")
    assert w.subscribe(".broker/info") == OK
    n = broker.client("newcomer")
    kind, sender, topic, data, _ = w.read_frame()
    assert (kind, sender, topic) == ("publish", ".broker", ".broker/info")
    ev = msgpack.unpackb(data)
    assert ev["s"] == "reg" and ev["d"] == "newcomer" and ev["t"] > 1.6e18
    n.close()
    ev = msgpack.unpackb(w.read_frame()[3])
    assert ev["s"] == "unreg" and ev["d"] == "newcomer"


def test_shutdown_warning_reaches_every_client():
    import msgpack
    b = Busrtd()
    b.__enter__()
    c = b.client("x")  # implicitly subscribed to .broker/warn
    b.proc.send_signal(15)
    kind, sender, topic, data, _ = c.read_frame()
    assert (kind, sender, topic) == ("publish", ".broker", ".broker/warn")
    assert msgpack.unpackb(data)["s"] == "shutdown"
    assert c.is_closed()
    b.__exit__(None, None, None)
