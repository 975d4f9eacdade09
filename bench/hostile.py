#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The cost of each hostile probe against a busrtd build: what one client
can make the broker spend (time of a call, peak memory, publish rate with
and without the hostile state beside it). Run against two builds to see a
fix's effect:

    BUSRT_BIN=build/bin bench/hostile.py [probe ...]

Every probe starts its own broker on a socket in a short temporary
directory and stops it by PID. Figures are printed, never judged: the
pass/fail bounds are in pytest/test_hostile.py.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pytest"))
from busclient import OP_BROADCAST, OP_PUBLISH, Busrtd, frame, vm  # noqa: E402


def probe_rpc_params():
    """client.list with 16 MiB of one-byte MessagePack items."""
    with Busrtd() as b:
        c = b.client("c")
        n = 16 * 1024 * 1024 - 4096
        bomb = b"\xdd" + struct.pack(">I", n) + b"\xc0" * n
        base = vm(b.proc.pid, "VmHWM")
        t = time.monotonic()
        r = c.rpc("client.list", bomb, timeout=60)
        dt = time.monotonic() - t
        return {"answer": f"{r[0]} {r[1]}", "call_s": round(dt, 3),
                "peak_growth_mib": round((vm(b.proc.pid, "VmHWM") - base) / 1024, 1)}


def probe_list_filter():
    """client.list with glibc's worst 26-byte pattern."""
    with Busrtd() as b:
        c = b.client("c")
        base = vm(b.proc.pid, "VmHWM")
        t = time.monotonic()
        r = c.rpc("client.list", {"filter": "((a{1,100}){1,100}){1,100}"}, timeout=60)
        dt = time.monotonic() - t
        return {"answer": r[0], "call_s": round(dt, 3),
                "peak_growth_mib": round((vm(b.proc.pid, "VmHWM") - base) / 1024, 1)}


BIG_BUDGETS = """broker:
  limits:
    subscriptions_bytes_max: 1000000000
    subscriptions_bytes_total_max: 1000000000
"""


def probe_masks():
    """One client's 1,024 masks of 128 distinct levels: the memory they
    cost, beside what the broker charges for them, with the budgets
    raised (and the answer at the default budget)."""
    out = {}
    def mask(i):
        return f"m{i}/" + "/".join(str(j % 10) for j in range(127))
    b = Busrtd(config=BIG_BUDGETS)
    try:
        b.__enter__()
    except RuntimeError:  # a build without the budgets
        b = Busrtd()
        b.__enter__()
    try:
        c = b.client("c")
        base = vm(b.proc.pid, "VmRSS")
        codes = [c.subscribe(mask(i)) for i in range(1024)]
        assert all(x == 1 for x in codes), codes
        grown = vm(b.proc.pid, "VmRSS") - base
        charged = c.rpc("stats")[1].get("subscriptions_bytes", 0)
        out["rss_mib"] = round(grown / 1024, 1)
        out["charged_mib"] = round(charged / 1048576, 1)
        out["rss_per_level_b"] = round(grown * 1024 / (1024 * 128))
    finally:
        b.__exit__(None, None, None)
    with Busrtd() as b:
        c = b.client("c")
        codes = [c.subscribe(mask(i)) for i in range(1024)]
        out["default_accepted"] = sum(1 for x in codes if x == 1)
        out["rss_mib_default"] = round((vm(b.proc.pid, "VmRSS")) / 1024, 1)
    return out


def publish_rate(b, topic, n=20000, op=OP_PUBLISH):
    """Frames per second the broker takes from one publisher: n at QoS 0
    in one write, then one at QoS 1 whose ACK comes after all of them."""
    p = b.client("rate-pub")
    batch = b"".join(frame(op, topic.encode() + b"\x00x", 0, i + 1) for i in range(n))
    t = time.monotonic()
    p.send(batch)
    op_id = p.next_id()
    p.send(frame(op, topic.encode() + b"\x00x", 1, op_id))
    p.ack(op_id, timeout=120)
    dt = time.monotonic() - t
    p.close()
    return round(n / dt)


def probe_exclusions():
    """Publishes per second with 100 idle clients subscribed to # with
    1,024 exclusions each, against the same clients without exclusions."""
    out = {}
    for excl in (False, True):
        with Busrtd() as b:
            idle = []
            for k in range(100):
                c = b.client(f"idle{k}")
                c.subscribe("#")
                if excl:
                    for i in range(0, 1024, 64):
                        c.exclude(*[f"x/{j}/+/y" for j in range(i, i + 64)])
                idle.append(c)
            # the idle clients read nothing: their queues hold what comes
            out["with" if excl else "without"] = publish_rate(b, "t/a/b", 5000)
            for c in idle:
                c.close()
    out["slowdown"] = round(out["without"] / out["with"], 2)
    return out


def probe_adversarial_trie():
    """Publishes per second on a/a/.../a/y (none matches) with one
    client's 1,024 masks over {a,+}^10/z, against 1,024 ordinary masks;
    and with {a,+}^10/z<bits>, where no mask covers another (the shape a
    trie cannot answer below the masks' count: see the README)."""
    out = {}
    for kind in ("ordinary", "adversarial", "antichain"):
        with Busrtd() as b:
            c = b.client("s")
            masks = []
            for bits in range(1024):
                head = "/".join("+" if bits >> lv & 1 else "a" for lv in range(10))
                if kind == "adversarial":
                    masks.append(head + "/z")
                elif kind == "antichain":
                    masks.append(head + f"/z{bits}")
                else:
                    masks.append(f"m{bits}/a/a/a/a/a/a/a/a/a/z")
            for i in range(0, 1024, 64):
                c.subscribe(*masks[i:i + 64])
            out[kind] = publish_rate(b, "/".join(["a"] * 10) + "/y")
    out["slowdown"] = round(out["ordinary"] / out["adversarial"], 2)
    out["antichain_slowdown"] = round(out["ordinary"] / out["antichain"], 2)
    return out


def probe_mask_books():
    """What one client's frames cost while its masks are compared: 1,023
    masks none of which covers another in one frame; their removal; and
    the removal of a cover ("#") over all of them (the ACK's wait, ms)."""
    masks = ["/".join(["a"] * 10) + f"/z{i}" for i in range(1023)]
    with Busrtd() as b:
        c = b.client("s")
        t = time.perf_counter()
        c.subscribe(*masks)
        sub_ms = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        c.unsubscribe(*masks)
        unsub_ms = (time.perf_counter() - t) * 1e3
        c.subscribe(*masks)
        c.subscribe("#")
        time.sleep(0.5)
        t = time.perf_counter()
        c.unsubscribe("#")
        cover_ms = (time.perf_counter() - t) * 1e3
    return {"subscribe_ms": round(sub_ms, 1), "unsubscribe_ms": round(unsub_ms, 1),
            "cover_gone_ms": round(cover_ms, 1)}


def probe_broadcast():
    """With 201 registered clients: a broadcast whose mask is 16 MiB (the
    whole payload), the time until its ACK; and broadcasts per second
    with a mask whose literal prefix matches nobody."""
    out = {}
    with Busrtd() as b:
        cl = [b.client(f"c{k}") for k in range(201)]
        p = b.client("bc")
        mask = b"c" + b"x" * (16 * 1024 * 1024 - 32)
        t = time.monotonic()
        code = p.op(OP_BROADCAST, mask + b"\x00x")
        out["huge_mask_s"] = round(time.monotonic() - t, 3)
        out["huge_mask_ack"] = hex(code)
        out["nobody_per_s"] = publish_rate(b, "nobody.*", 5000, OP_BROADCAST)
        out["all_per_s"] = publish_rate(b, "*", 2000, OP_BROADCAST)
        for c in cl:
            c.close()
    return out


def probe_idle_input():
    """Ten connections each send one 16 MiB frame, then stay idle: the
    broker's resident memory after, over its start."""
    with Busrtd() as b:
        base = vm(b.proc.pid, "VmRSS")
        cl = [b.client(f"big{k}") for k in range(10)]
        data = b"x" * (16 * 1024 * 1024 - 64)
        for c in cl:
            assert c.publish("nobody", data) == 1
        time.sleep(0.2)
        st = cl[0].rpc("stats")[1]
        out = {"idle_rss_growth_mib": round((vm(b.proc.pid, "VmRSS") - base) / 1024, 1),
               "peak_growth_mib": round((vm(b.proc.pid, "VmHWM") - base) / 1024, 1)}
        if "input_bytes" in st:
            out["input_bytes"] = st["input_bytes"]
        return out


PROBES = {name[6:]: fn for name, fn in globals().items() if name.startswith("probe_")}


def main(argv):
    names = argv or sorted(PROBES)
    bad = [n for n in names if n not in PROBES]
    if bad:
        print(f"hostile.py: unknown probe {bad[0]!r}; known: {', '.join(sorted(PROBES))}",
              file=sys.stderr)
        return 2
    print(f"busrtd: {os.path.realpath(os.environ.get('BUSRT_BIN', 'build/bin'))}")
    for n in names:
        res = PROBES[n]()
        print(f"{n:<16} " + "  ".join(f"{k}={v}" for k, v in res.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
