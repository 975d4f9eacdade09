# SPDX-License-Identifier: Apache-2.0
"""Bad input closes only the offending connection (PROTOCOL.md §2, §8);
a bystander keeps receiving throughout."""
import struct

import pytest
from busclient import OK, PING, frame


def bad_frames():
    return {
        "unknown_op": frame(0x3F, b"x"),
        "ping_with_payload": struct.pack("<IBI", 0, 0, 3) + b"abc",
        "four_gib_length": struct.pack("<IBI", 1, 0x01, 0xFFFFFFFF),
        "over_payload_limit": struct.pack("<IBI", 1, 0x01, 16 * 1024 * 1024 + 1),
        "invalid_utf8_topic": frame(0x01, b"\xff\xfe\x00data"),
        "invalid_utf8_mask": frame(0x02, b"ok\x00\xc0\xaf"),
        "missing_separator": frame(0x01, b"no-separator-here"),
        "message_missing_separator": frame(0x12, b"target-only"),
        "publish_for_missing_receiver": frame(0x06, b"topic\x00receiver"),
    }


@pytest.mark.parametrize("name", sorted(bad_frames()))
def test_bad_frame_closes_only_offender(broker, name):
    pub, by = broker.client("pub"), broker.client("bystander")
    assert by.subscribe("t") == OK
    bad = broker.client("bad")
    pub.publish("t", b"before")
    bad.send(bad_frames()[name])
    assert bad.is_closed()
    pub.publish("t", b"after")
    assert by.read_frame()[3] == b"before"
    assert by.read_frame()[3] == b"after"
    assert by.rpc("stats")[1]["disconnects_proto"] == 1


def test_truncated_frame_then_hangup(broker):
    pub, by = broker.client("pub"), broker.client("bystander")
    by.subscribe("t")
    bad = broker.client("bad")
    bad.send(frame(0x01, b"t\x00" + b"x" * 100)[:50])
    bad.close()
    pub.publish("t", b"still here")
    assert by.read_frame()[3] == b"still here"


def test_garbage_greeting_does_not_disturb(broker):
    pub, by = broker.client("pub"), broker.client("bystander")
    by.subscribe("t")
    g = broker.raw()
    g.read_exact(3)
    g.send(b"\x00" * 64)
    assert g.read_exact(1)[0] == 0x75
    assert g.is_closed()
    pub.publish("t", b"ok")
    assert by.read_frame()[3] == b"ok"


def test_ping_keeps_connection_and_gets_no_answer(broker):
    c = broker.client("c")
    c.send(PING)
    c.expect_nothing()
    assert c.rpc("test")[0] == "reply"


def test_regression_leading_empty_level_mask(broker):
    """'/a/b' was normalised to 'a/b' (found by the unit truth table)."""
    p, s = broker.client("p"), broker.client("s")
    s.subscribe("/a/b")
    p.publish("a/b", b"wrong")
    p.publish("/a/b", b"right")
    assert s.read_frame()[3] == b"right"
    s.expect_nothing()


def test_frames_before_a_bad_one_are_answered(broker):
    """A bad frame ends the connection, but the ACKs of the good frames
    sent before it in the same write still arrive (the answer must not
    depend on how the bytes were cut into reads)."""
    sub = broker.client("sub")
    assert sub.subscribe("t") == OK
    c = broker.client("offender")
    good = b"".join(frame(0x01, b"t\x00%d" % i, qos=1, op_id=100 + i) for i in range(3))
    c.send(good + frame(0x3F, b"bad"))
    assert [c.read_frame() for _ in range(3)] == [("ack", 100 + i, OK) for i in range(3)]
    assert c.is_closed()
    assert [sub.read_frame()[3] for _ in range(3)] == [b"0", b"1", b"2"]
    # the name is free again at once
    assert broker.client("offender").publish("t", b"again") == OK
