"""Slow consumers over real sockets: a reader that stops, a small queue,
exact counters per policy, and a bystander that receives 100%."""
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
    with Busrtd("--queue-size", "4") as b:
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
