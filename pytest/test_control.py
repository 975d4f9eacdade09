# SPDX-License-Identifier: Apache-2.0
"""The design's control topics between the agent and its collectors:
control/collector/capabilities (what a collector is, before any of its
events), capability-based topic selection (agent.events: advertised), and
the coordinated shutdown (control/agent/shutdown, each collector's answer
on control/collector/shutdown, then its exit), all in the audit trail."""
import json
import signal
import subprocess
import time

from busclient import OK, connect
from test_daemoneye import Agent, _gone, wait_for


def audit_lines(a):
    try:
        return [json.loads(x) for x in open(a.audit).read().splitlines()]
    except FileNotFoundError:
        return []


def test_capabilities_kept_and_shown(pb):
    with Agent("embedded", pb, agent_extra="  status_interval_ms: 200\n") as a:
        st = wait_for(lambda: (lambda s: s if s.HasField("capabilities") else None)(
            a.status("p1")), what="p1's capabilities")
        caps = st.capabilities
        assert caps.collector_id == "p1" and caps.collector_type == "process"
        assert caps.bus_name == "collector.process.p1"
        assert caps.incarnation == st.incarnation or st.incarnation == 0
        assert set(caps.event_topics) == {
            "events/process/enumeration", "events/process/lifecycle",
            "events/process/metadata", "events/process/hash"}
        assert "collector.resync" in caps.rpc_methods
        assert "health.heartbeat" in caps.rpc_methods
        assert caps.scan_interval_ms == 100 and caps.compute_hashes
        assert caps.version
        # the audit trail holds the capabilities the agent received
        lines = audit_lines(a)
        got = [x for x in lines if x.get("target") == "control/collector/capabilities"]
        assert got and got[0]["dir"] == "in" and got[0]["sender"] == "collector.process.p1"
        # and the control/agent/status it publishes (every 200 ms here)
        wait_for(lambda: any(x.get("target") == "control/agent/status" and x["dir"] == "out"
                             for x in audit_lines(a)), what="a status in the audit trail")


def test_forged_capabilities_refused(pb):
    """Only the collector itself speaks for it: a trusted tool may not
    publish under control/ at all (default ACL); a collector naming
    another collector is refused by the agent."""
    with Agent("embedded", pb) as a:
        t = connect(a.sock, "test.forger")
        forged = pb.CollectorCapabilities(collector_id="p1", collector_type="process",
                                          event_topics=["events/process/evil"])
        assert t.publish("control/collector/capabilities",
                         forged.SerializeToString()) != OK
        t.close()
        # a registered collector name, speaking for p1
        f = connect(a.sock, "collector.process.spare")
        assert f.publish("control/collector/capabilities",
                         forged.SerializeToString()) == OK
        wait_for(lambda: any(x.get("dir") == "denied" and
                             x.get("sender") == "collector.process.spare"
                             for x in audit_lines(a)),
                 what="the forged capabilities refused in the audit trail")
        assert "events/process/evil" not in a.status("p1").capabilities.event_topics
        f.close()


def test_advertised_topic_selection(pb):
    """agent.events: advertised: the agent subscribes exactly the topics
    its collectors advertise, and processes their events."""
    with Agent("embedded", pb, agent_extra="  events: advertised\n") as a:
        wait_for(lambda: a.status("p1").events > 0, what="events processed")
        assert "subscribed events/process/lifecycle (advertised by p1)" in a.log()
        st = a.status("p1")
        assert st.gaps == 0


def test_coordinated_shutdown(pb):
    a = Agent("embedded", pb)
    with a:
        watch = connect(a.sock, "monitor.watch")
        pid = a.status("p1").pid
        a.ctl.close()
        a.proc.send_signal(signal.SIGTERM)
        rc = a.proc.wait(timeout=10)
        assert rc == 0, a.log()
        log = a.log()
        assert "p1: shutdown answered" in log, log
        # it exited on the bus's word, not on a signal
        assert "sending SIGTERM" not in log and "sending SIGKILL" not in log, log
        assert "exited with status 0" in log, log
        lines = audit_lines(a)
        out = [x for x in lines if x.get("target") == "control/agent/shutdown"]
        assert out and out[0]["dir"] == "out" and out[0]["result"] == 0, out
        ans = [x for x in lines if x.get("target") == "control/collector/shutdown"]
        assert ans and ans[0]["sender"] == "collector.process.p1", lines
        watch.close()
        a.proc = _exited()  # for __exit__, which stops the agent
        assert _gone(pid)


def test_shutdown_with_a_deaf_collector_stays_within_its_timeout(pb):
    """A collector that does not answer (stopped with SIGSTOP) gets SIGTERM
    at half of stop_timeout_ms, SIGKILL at stop_timeout_ms: the agent does
    not hang."""
    a = Agent("embedded", pb)
    with a:
        pid = a.status("p1").pid
        a.ctl.close()
        subprocess.run(["kill", "-STOP", str(pid)], check=True)
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        rc = a.proc.wait(timeout=10)
        took = time.monotonic() - t0
        assert rc == 0, a.log()
        log = a.log()
        assert "sending SIGKILL" in log, log
        # SIGKILL at stop_timeout_ms (1000 here), not before; no hang
        assert 0.9 <= took < 8.0, took
        a.proc = _exited()
        assert _gone(pid)


def _exited():
    """A finished process with status 0: the agent was already stopped."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p
