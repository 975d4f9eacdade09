# SPDX-License-Identifier: Apache-2.0
"""A batching load generator for busrtd (until `make bench` arrives with the
client issue): one publisher writes pre-framed QoS-0 publishes in 64 KiB
blocks; N subscriber processes count delivered bytes. Prints messages/s
delivered and, with --rss, the broker's RSS with 64 idle clients.

  python3 bench/loadgen.py --busrtd build/bin/busrtd --subs 1 --mask bench/t
"""
import argparse
import multiprocessing as mp
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pytest"))
import busclient  # noqa: E402

PAYLOAD = b"p" * 100
TOPIC = "bench/t"


def subscriber(path, name, mask, expect_bytes, ready, done):
    c = busclient.connect(path, name)
    assert c.subscribe(mask) == busclient.OK
    ready.set()
    buf = bytearray(1 << 20)
    got = len(c.buf)
    c.sock.settimeout(60)
    while got < expect_bytes:
        n = c.sock.recv_into(buf)
        if n == 0:
            break
        got += n
    done.put((name, got))


def run(args, path):
    n = args.messages
    fr = busclient.frame(busclient.OP_PUBLISH, TOPIC.encode() + b"\0" + PAYLOAD, 0, 1)
    per_block = 65536 // len(fr)
    block = fr * per_block
    delivered = 6 + len(b"pub\0") + len(TOPIC) + 1 + len(PAYLOAD)
    ready = [mp.Event() for _ in range(args.subs)]
    done = mp.Queue()
    procs = [mp.Process(target=subscriber, args=(path, f"sub{i}", args.mask, n * delivered, ready[i], done))
             for i in range(args.subs)]
    for p in procs:
        p.start()
    for e in ready:
        e.wait(10)
    pub = busclient.connect(path, "pub")
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(per_block, n - sent)
        pub.sock.sendall(block if k == per_block else fr * k)
        sent += k
    results = [done.get(timeout=120) for _ in procs]
    dt = time.perf_counter() - t0
    for p in procs:
        p.join()
    total = sum(r[1] for r in results) // delivered
    return total / dt, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--busrtd", required=True)
    ap.add_argument("--subs", type=int, default=1)
    ap.add_argument("--mask", default=TOPIC)
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rss", action="store_true")
    args = ap.parse_args()
    busclient.BUSRTD = os.path.abspath(args.busrtd)
    with busclient.Busrtd("--queue-size", "100000") as b:
        if args.rss:
            idle = [b.client(f"idle{i}") for i in range(64)]
            time.sleep(0.2)
            rss = [ln for ln in open(f"/proc/{b.proc.pid}/status") if ln.startswith("VmRSS")]
            print(f"busrtd with {len(idle)} idle clients: {rss[0].split(':')[1].strip()}")
            for c in idle:
                c.close()
            return
        rates = []
        for _ in range(args.reps):
            rate, dt = run(args, b.path)
            rates.append(rate)
        rates.sort()
        print(f"1->{args.subs} mask={args.mask}: median {rates[len(rates)//2]/1e6:.2f} M msg/s delivered "
              f"(min {rates[0]/1e6:.2f}, max {rates[-1]/1e6:.2f}; {args.messages} msgs x {args.reps} reps)")


if __name__ == "__main__":
    main()
