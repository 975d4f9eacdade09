# SPDX-License-Identifier: Apache-2.0
"""make run: start busrtd on a temporary socket, drive a short
publish/subscribe/.broker exchange through it with the test suite's client,
print what flows, stop it with SIGTERM and check it exited 0."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pytest"))
import busclient  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--busrtd", required=True)
args = ap.parse_args()
busclient.BUSRTD = os.path.abspath(args.busrtd)

with busclient.Busrtd() as b:
    print(f"busrtd started on {b.path} (pid {b.proc.pid})")
    agent = b.client("daemoneye-agent")
    mon = b.client("monitor.demo")
    coll = b.client("collector.process.demo-1")
    print("agent subscribes events/#         ->", hex(agent.subscribe("events/#")))
    print("monitor subscribes events/*/anomaly ->", hex(mon.subscribe("events/*/anomaly")))
    for i, topic in enumerate(["events/process/lifecycle", "events/process/anomaly"], 1):
        ack = coll.publish(topic, f"event {i}".encode())
        print(f"collector publishes {topic} -> ack {ack:#x}")
    for who, c, n in (("agent", agent, 2), ("monitor", mon, 1)):
        for _ in range(n):
            kind, sender, topic, data, _rt = c.read_frame()
            print(f"  {who} got {kind} from {sender} on {topic}: {data.decode()}")
    print("agent broadcasts to collector.*   ->", hex(agent.broadcast("collector.*", b"ping")))
    kind, sender, _, data, _ = coll.read_frame()
    print(f"  collector got {kind} from {sender}: {data.decode()}")
    print(".broker test  ->", agent.rpc("test")[1])
    print(".broker info  ->", agent.rpc("info")[1])
    st = agent.rpc("stats")[1]
    print(".broker stats ->", {k: st[k] for k in ("r_frames", "w_frames", "clients")})
    names = [c["name"] for c in agent.rpc("client.list")[1]["clients"]]
    print(".broker client.list ->", names)
    for c in (agent, mon, coll):
        c.close()
print("busrtd stopped cleanly (exit 0)")
