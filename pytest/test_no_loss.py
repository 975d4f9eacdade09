# SPDX-License-Identifier: Apache-2.0
"""No event lost, with the real procmond and agent: a burst that overflows
everything between them, a broker SIGKILLed mid-stream, an agent that
restarts while its collector lives on. The agent's view of each stream is
its lifecycle.status (events processed in sequence, duplicates, gaps,
resyncs) and its log and audit trail."""
import json
import os
import signal
import subprocess
import time

import pytest
from busclient import BUSRTD, Busrtd, connect, events
from test_daemoneye import AGENT, PROCMOND, Agent, wait_for

ARG = "x" * 25000  # 701 x 25 KB: past the 16 MiB a client could buffer


def drain_events(pb, c, pids, seconds):
    """DISCOVERYs of pids seen by c within seconds (raw deliveries)."""
    seen = set()
    for e in events(pb, c, seconds):
        p = e.process_event.process
        if e.process_event.event_type == pb.ProcessEvent.DISCOVERY and p.pid in pids:
            seen.add(p.pid)
            if pids <= seen:
                break
    return seen


def settled(a, cid="p1"):
    """The agent processed everything procmond made, and nothing is
    retained unacknowledged (the stream is complete, not just quiet)."""
    st = a.status(cid)
    r = a.call(f"collector.process.{cid}", "health.metrics",
               a.pb.MetricsRequest(collector_id=cid))
    assert r[0] == "reply", r
    m = dict(a.pb.MetricsResponse.FromString(r[2]).metrics)
    return st if st.last_sequence == m["events"] + m["gaps_declared"] else None


def test_burst_of_701_large_processes_every_one_reported(pb):
    with Agent("embedded", pb) as a:
        watch = connect(a.sock, "test.watch")
        assert watch.subscribe("events/process/lifecycle") == 1
        time.sleep(0.3)
        # each a shell blocked reading its stdin, its $0 the long argument
        procs = [subprocess.Popen(["sh", "-c", "read x", ARG], stdin=subprocess.PIPE)
                 for _ in range(701)]
        try:
            pids = {p.pid for p in procs}
            seen = drain_events(pb, watch, pids, 60)
            assert seen == pids, f"{len(pids - seen)} of 701 never reported"
            st = wait_for(lambda: settled(a), timeout=30, what="the agent to catch up")
            assert st.gaps == 0 and st.events > 701, st
            assert st.processes >= 701
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()
        watch.close()


def test_broker_sigkill_midstream_leaves_no_gap(pb):
    """Standalone: busrtd SIGKILLed while procmond publishes and restarted on
    the same socket; procmond re-sends what the agent had not acknowledged,
    the agent drops the duplicates: its stream has no gap."""
    with Agent("standalone", pb) as a:
        b = a.busrtd
        stop = time.monotonic() + 3
        churn = []
        killed = False
        while time.monotonic() < stop:
            churn.append(subprocess.Popen(["sleep", "0.05"]))
            time.sleep(0.01)
            if not killed and time.monotonic() > stop - 2:
                # while procmond holds events the agent has not acknowledged
                # (heartbeats acknowledge, every 200 ms): those must come again
                r = a.call("collector.process.p1", "health.metrics",
                           a.pb.MetricsRequest(collector_id="p1"))
                if a.pb.MetricsResponse.FromString(r[2]).metrics["retained"] == 0:
                    continue
                b.proc.kill()  # SIGKILL: no goodbye, the socket file stays
                b.proc.wait()
                killed = True
                time.sleep(0.2)
                b.proc = subprocess.Popen([BUSRTD, "-B", b.path], stderr=b.stderr)
        for p in churn:
            p.wait()
        assert killed, "procmond never held an unacknowledged event"
        a.ctl.close()
        a.ctl = wait_for(a._connect, what="the restarted broker")
        wait_for(a._p1_running, timeout=15, what="procmond back")
        st = wait_for(lambda: settled(a), timeout=20, what="the agent to catch up")
        assert st.gaps == 0, st
        # what the agent had not acknowledged was sent again: as duplicates
        # (it had reached the agent) or as fills (it died with the broker)
        r = a.call("collector.process.p1", "health.metrics",
                   a.pb.MetricsRequest(collector_id="p1"))
        m = dict(a.pb.MetricsResponse.FromString(r[2]).metrics)
        assert m["resends"] > 0 or st.resyncs > 0, (m, st)


def test_agent_restart_asks_a_resync(pb, tmp_path):
    """A procmond that outlives its agent (started by hand): the new agent
    knows nothing of its stream, asks collector.resync at the first event,
    and gets the events it missed (re-sent) or the table (a full resync)."""
    with Busrtd() as b:
        pm = subprocess.Popen([PROCMOND, "--connect", b.path, "--id", "p1",
                               "--interval-ms", "100", "--no-hash"],
                              stderr=subprocess.DEVNULL)
        audit = tmp_path / "audit.jsonl"
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(f"broker:\n  mode: standalone\n  standalone:\n    socket: {b.path}\n"
                       f"agent:\n  audit_log: {audit}\n  collectors: []\n")
        time.sleep(0.5)  # procmond's first cycles go to nobody
        try:
            for round_ in range(2):  # start, SIGKILL, start again
                errp = tmp_path / f"agent{round_}.log"
                with open(errp, "w") as err:
                    ag = subprocess.Popen([AGENT, "--config", str(cfg), "--log-level",
                                           "info"], stderr=err)
                    time.sleep(0.5)
                    subprocess.run(["sleep", "0.3"])  # an event to see
                    wait_for(lambda: "resync" in errp.read_text(), timeout=10,
                             what=f"agent {round_} to resync")
                    if round_ == 0:
                        ag.kill()
                        ag.wait()
                    else:
                        ag.send_signal(signal.SIGTERM)
                        assert ag.wait(timeout=10) == 0
            lines = [json.loads(x) for x in audit.read_text().splitlines()]
            asks = [x for x in lines if x["method"] == "collector.resync"]
            assert len(asks) >= 2 and all(x["result"] == 0 for x in asks), asks
            assert asks[0]["target"] == "collector.process.p1"
        finally:
            pm.send_signal(signal.SIGTERM)
            pm.wait(timeout=10)
