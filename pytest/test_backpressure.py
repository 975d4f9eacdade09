# SPDX-License-Identifier: Apache-2.0
"""Backpressure, busrtd's default (queue_policy: block), over real sockets:
floods of 1 M messages with one deliberately slow subscriber lose nothing
and slow the publisher down; a subscriber that never reads is cut after
the deadline while the others go on. The publishers and subscribers are
busrt-bench (our C client): every publisher numbers its messages and every
subscriber checks each publisher's sequence (lost, duplicated)."""
import json
import os
import subprocess
import time

import pytest
from busclient import BIN, OK, PING, Busrtd, frame

BENCH = os.path.join(BIN, "busrt-bench")
N = 1_000_000


def start_sub(b, name, expect, slow=False):
    argv = [BENCH, "sub", "-s", b.path, "-n", name, "--mask", "bench/#",
            "--expect", str(expect)]
    if slow:  # one frame per millisecond for 2 s: its loop reads nothing
        argv += ["--slow-us", "1000", "--slow-for-ms", "2000"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr.readline().strip() == "ready", name  # subscribed
    return p


def finish(p, what, timeout=120):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"{what}: {err}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("pubs,subs", [(1, 1), (1, 4), (8, 1)], ids=["1to1", "1to4", "8to1"])
def test_flood_with_a_slow_subscriber_loses_nothing(pubs, subs):
    with Busrtd() as b:  # the default configuration
        per = N // pubs
        slow = start_sub(b, "slow", per * pubs, slow=True)
        others = [start_sub(b, f"fast{i}", per * pubs) for i in range(subs - 1)]
        t0 = time.monotonic()
        ps = [subprocess.Popen([BENCH, "pub", "-s", b.path, "-n", f"pub{i}",
                                "--messages", str(per)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(pubs)]
        res = [finish(p, "pub") for p in ps]
        pub_wall = time.monotonic() - t0
        for r in res:
            assert r["messages"] == per
        for p in [slow] + others:
            r = finish(p, "sub")
            assert r["messages"] == per * pubs
            assert r["lost"] == 0 and r["duplicated"] == 0, r
        # the slow reader took >= 2 s over its first 2,000 frames; the
        # broker held the publishers back instead of queueing everything
        assert pub_wall > 1.5, f"publishers were not slowed: {pub_wall:.2f} s"
        st = b.client("check").rpc("stats")[1]
        assert st["drops_slow"] == 0 and st["disconnects_slow"] == 0
        assert st["disconnects_stalled"] == 0
        assert st["backpressure_waits"] > 0


def test_a_subscriber_that_never_reads_is_cut_after_the_deadline():
    with Busrtd("-t", "2") as b:  # block_deadline follows the timeout
        stuck = b.client("stuck")
        assert stuck.subscribe("bench/#") == OK
        fast = start_sub(b, "fast", 300_000)
        t0 = time.monotonic()
        pub = subprocess.Popen([BENCH, "pub", "-s", b.path, "-n", "pub",
                                "--messages", "300000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r = finish(pub, "pub")
        wall = time.monotonic() - t0
        assert r["messages"] == 300_000
        assert 1.5 < wall < 15, wall  # held until the stuck one was cut
        r = finish(fast, "fast")
        assert r["lost"] == 0 and r["duplicated"] == 0 and r["messages"] == 300_000
        st = b.client("check").rpc("stats")[1]
        assert st["disconnects_stalled"] == 1
        assert st["disconnects_slow"] == 0 and st["drops_slow"] == 0
        assert stuck.is_closed(timeout=5)


def test_a_publisher_that_waits_is_not_cut_for_silence():
    """A publisher the broker stopped reading sends no pings the broker can
    read; it must not be dropped as idle (1.25 x timeout) while it waits."""
    with Busrtd("-t", "1", "--queue-size", "100",
                config="broker:\n  block_deadline_ms: 4000\n") as b:
        stuck = b.client("stuck")
        assert stuck.subscribe("t") == OK
        pub = b.client("pub")
        data = b"t\x00" + b"x" * 1000
        # publish until the socket takes no more for a while: stuck's
        # kernel buffer and its 100 queued frames are full, pub waits,
        # and the broker has stopped reading it
        pub.sock.setblocking(False)
        blob, sent = b"".join(frame(1, data, 0, i + 1) for i in range(4000)), 0
        refused_since = None
        while sent < len(blob):
            try:
                sent += pub.sock.send(blob[sent:sent + 65536])
                refused_since = None
            except BlockingIOError:
                refused_since = refused_since or time.monotonic()
                if time.monotonic() - refused_since > 0.4:
                    break
                stuck.send(PING)
                time.sleep(0.02)
        assert sent < len(blob), "the broker read everything: no backpressure"
        check = b.client("check")

        def pub_ping():  # into a full socket: tried, never blocking
            try:
                pub.sock.send(PING)
            except BlockingIOError:
                pass

        def keepalive(seconds):  # both ping; only stuck's are read
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    stuck.send(PING)
                except OSError:
                    pass  # cut at the deadline (checked below)
                pub_ping()
                check.send(PING)
                time.sleep(0.25)

        keepalive(2.5)  # 2 x the idle cut of 1.25 s
        st = check.rpc("stats")[1]
        assert st["disconnects_idle"] == 0, st
        assert st["backpressure_waits"] >= 1
        assert st["disconnects_stalled"] == 0
        keepalive(2.5)  # past the 4 s deadline: stuck is cut
        st = check.rpc("stats")[1]
        assert st["disconnects_stalled"] == 1 and st["disconnects_idle"] == 0, st
        assert stuck.is_closed(timeout=5)
        # pub goes on: what it had written is read, and it is not cut
        time.sleep(0.3)
        st = check.rpc("stats")[1]
        whole = sent // len(frame(1, data, 0, 1))
        assert st["r_frames"] >= whole and st["disconnects_idle"] == 0, st
