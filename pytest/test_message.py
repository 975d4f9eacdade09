# SPDX-License-Identifier: Apache-2.0
"""One-to-one messages and broadcasts (PROTOCOL.md §2, §4, §8)."""
from busclient import NOT_REGISTERED, OK


def test_message_delivered_and_acked(broker):
    a, b = broker.client("a"), broker.client("b")
    assert a.message("b", b"hi") == OK
    assert b.read_frame() == ("message", "a", None, b"hi", 0)


def test_message_to_unknown_is_not_registered_or_silent(broker):
    a = broker.client("a")
    assert a.message("nobody", b"hi") == NOT_REGISTERED
    a.message("nobody", b"hi", qos=0)
    a.expect_nothing()


def test_message_from_secondary_carries_full_name(broker):
    a = broker.client("a")  # noqa: F841
    s = broker.client("a%%w")
    b = broker.client("b")
    s.message("b", b"x")
    assert b.read_frame()[1] == "a%%w"


def test_broadcast_masks(broker):
    sender = broker.client("agent")
    c1 = broker.client("collector.proc")
    c2 = broker.client("collector.net.1")
    other = broker.client("monitor.x")
    assert sender.broadcast("collector.*", b"all") == OK
    assert c1.read_frame() == ("broadcast", "agent", None, b"all", 0)
    assert c2.read_frame()[3] == b"all"
    other.expect_nothing()
    sender.broadcast("collector.?", b"one")
    assert c1.read_frame()[3] == b"one"
    c2.expect_nothing()
