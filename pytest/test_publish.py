# SPDX-License-Identifier: Apache-2.0
"""Publish/subscribe routing (PROTOCOL.md §2, §4) over real sockets."""
import pytest
from busclient import DATA, OK, Busrtd


def test_every_qos_delivers_and_acks_as_asked(broker):
    a, b = broker.client("a"), broker.client("b")
    assert b.subscribe("t") == OK
    for qos in range(4):
        r = a.publish("t", bytes([qos]), qos=qos)
        assert r == (OK if qos & 1 else None)
        kind, sender, topic, data, rt = b.read_frame()
        assert (kind, sender, topic, data) == ("publish", "a", "t", bytes([qos]))
        assert rt == (1 if qos & 2 else 0)


@pytest.mark.parametrize("mask,topic,hit", [
    ("a/b", "a/b", True), ("a/b", "/a/b", False), ("a/b", "a//b", False),
    ("a/+/c", "a/b/c", True), ("a/+/c", "a/c", False), ("a/*/c", "a/b/c", True),
    ("a/#", "a/b/c", True), ("a/#", "a", False), ("#", "x", True), ("#", "", True),
    ("a/#/x", "a/b", True), ("a/+#", "a/b", False), ("a/+#", "a/+#", True),
])
def test_mask_truth_table(broker, mask, topic, hit):
    p, s = broker.client("p"), broker.client("s")
    assert s.subscribe(mask) == OK
    p.publish(topic, b"x")
    if hit:
        assert s.read_frame()[2] == topic
    else:
        s.expect_nothing()


def test_star_literal_when_switched_off():
    with Busrtd(config="broker:\n  star_is_plus: false\n") as b:
        p, s = b.client("p"), b.client("s")
        s.subscribe("a/*")
        p.publish("a/b", b"1")
        p.publish("a/*", b"2")
        assert s.read_frame()[3] == b"2"
        s.expect_nothing()


def test_several_masks_one_delivery_and_self_delivery(broker):
    s = broker.client("s")
    assert s.subscribe("a/#", "a/+", "#", "a/b") == OK
    assert s.publish("a/b", b"x") == OK
    assert s.read_frame()[1:4] == ("s", "a/b", b"x")
    s.expect_nothing()


def test_unsubscribe_and_exclude(broker):
    p, s = broker.client("p"), broker.client("s")
    s.subscribe("e/#")
    assert s.exclude("e/secret/+") == OK
    p.publish("e/secret/x", b"no")
    p.publish("e/public", b"yes")
    assert s.read_frame()[3] == b"yes"
    s.expect_nothing()
    assert s.unexclude("e/secret/+") == OK
    p.publish("e/secret/x", b"now")
    assert s.read_frame()[3] == b"now"
    assert s.unsubscribe("e/#") == OK
    p.publish("e/public", b"gone")
    s.expect_nothing()


def test_publish_for_reaches_only_the_named_primary(broker):
    p = broker.client("p")
    a, a2, b = broker.client("a"), broker.client("a%%2"), broker.client("b")
    for c in (a, a2, b):
        c.subscribe("t")
    assert p.publish_for("t", "a", b"x") == OK
    assert a.read_frame()[3] == b"x"
    assert a2.read_frame()[3] == b"x"
    b.expect_nothing()


def test_subscription_limit_answers_data_and_applies_nothing():
    with Busrtd(config="broker:\n  limits:\n    subscriptions_max: 3\n") as b:
        p, s = b.client("p"), b.client("s")
        assert s.subscribe("a", "b", "c") == OK  # at the limit
        assert s.subscribe("d", "e") == DATA  # one past it: nothing applied
        p.publish("d", b"1")
        s.expect_nothing()
        assert s.subscribe("a") == OK  # already held: not new
        assert s.unsubscribe("a") == OK
        assert s.subscribe("d") == OK


def test_mask_length_and_depth_limits():
    cfg = "broker:\n  limits:\n    topic_bytes_max: 16\n    topic_levels_max: 4\n"
    with Busrtd(config=cfg) as b:
        s = b.client("s")
        assert s.subscribe("a" * 16) == OK
        assert s.subscribe("a" * 17) == DATA
        assert s.subscribe("a/b/c/d") == OK
        assert s.subscribe("a/b/c/d/e") == DATA
        assert s.publish("a/b/c/d/e", b"x") == DATA
        assert s.rpc("stats")[1]["rejects_limit"] == 3


def test_per_sender_order_is_kept(broker):
    p, s = broker.client("p"), broker.client("s")
    s.subscribe("n")
    for i in range(2000):
        p.publish("n", str(i).encode(), qos=0)
    got = [int(s.read_frame()[3]) for _ in range(2000)]
    assert got == list(range(2000))


def test_tcp_and_unix_clients_interoperate():
    with Busrtd(tcp=True) as b:
        t, u = b.client("t", tcp=True), b.client("u")
        u.subscribe("x")
        assert t.publish("x", b"over tcp") == OK
        assert u.read_frame()[3] == b"over tcp"
