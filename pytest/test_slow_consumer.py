# SPDX-License-Identifier: Apache-2.0
"""Slow consumers over real sockets under the policies that give up a
receiver (disconnect, drop_newest): a reader that stops, a small queue,
exact counters per policy, and a bystander that receives 100%. The
default, block, is test_backpressure.py's."""
import time

from busclient import OK, Busrtd

PAYLOAD = b"x" * 65536
N = 120


def flood(b):
    pub, by = b.client("pub"), b.client("bystander")
    slow = b.client("slow")
    assert slow.subscribe("t") == OK and by.subscribe("t") == OK
    for i in range(N):  # lockstep with the bystander: it never lags
        assert pub.publish("t", PAYLOAD[:-4] + i.to_bytes(4, "big")) == OK
        f = by.read_frame()
        assert int.from_bytes(f[3][-4:], "big") == i
    return pub, by, slow


def test_disconnect_policy_cuts_the_slow_reader_only():
    cfg = "broker:\n  queue_policy: disconnect\n"
    with Busrtd("--queue-size", "4", config=cfg) as b:
        pub, by, slow = flood(b)
        st = by.rpc("stats")[1]
        assert st["disconnects_slow"] == 1
        assert st["drops_slow"] == 0
        assert slow.is_closed(timeout=5)
        names = [c["name"] for c in by.rpc("client.list")[1]["clients"]]
        assert names == ["bystander", "pub"]


def test_drop_newest_counts_exactly_what_the_reader_missed():
    cfg = "broker:\n  queue_policy: drop_newest\n"
    with Busrtd("--queue-size", "4", config=cfg) as b:
        pub, by, slow = flood(b)
        from busclient import NOT_DELIVERED
        assert pub.message("slow", b"direct") == NOT_DELIVERED  # queue full
        got = []
        while True:
            try:
                f = slow.read_frame(timeout=1)
            except TimeoutError:
                break
            got.append(int.from_bytes(f[3][-4:], "big"))
        st = by.rpc("stats")[1]
        assert st["disconnects_slow"] == 0
        assert len(got) + st["drops_slow"] == N + 1  # + the message
        assert st["drops_slow"] > 0
        assert got == sorted(got) and got[0] == 0  # a prefix, in order


def test_queued_output_drains_without_new_input():
    """A write completion must lead to the next write without waiting for
    more input or a timer (libuv reports completions before it polls): a
    backlog queued for a subscriber drains while every client is silent.
    With -t 60 the broker's own keepalive timer fires every 30 s, so a
    stalled flush would miss the bound below by far."""
    from busclient import frame, OP_PUBLISH
    cfg = "broker:\n  standalone:\n    buffer_size: 1000000\n  limits:\n    queue_bytes_max: 268435456\n"
    with Busrtd("-t", "60", config=cfg) as b:
        sub = b.client("sub")
        assert sub.subscribe("t") == OK
        pub = b.client("pub")
        n = 100000
        payload = b"x" * 100
        fr = frame(OP_PUBLISH, b"t\x00" + payload, 0, 7)
        pub.send(fr * n)  # the subscriber reads nothing yet: a backlog
        assert pub.publish("done", b"", qos=1) == OK  # all routed
        deadline = time.monotonic() + 10
        size = 6 + len(b"pub\x00t\x00") + 100
        got = 0
        sub.sock.settimeout(10)
        while got < n * size and time.monotonic() < deadline:
            got += len(sub.sock.recv(1 << 20))
        assert got >= n * size, f"only {got // size} of {n} frames arrived"
