# SPDX-License-Identifier: Apache-2.0
"""DaemonEye end to end: daemoneye-agent (embedded broker, or joined to a
standalone busrtd) supervising a real procmond over /proc, with timings
scaled down. Events and RPC payloads are decoded with Python protobuf
classes that protoc generates from proto/daemoneye.proto for this run."""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from busclient import BIN, Busrtd, connect, events

AGENT = os.path.join(BIN, "daemoneye-agent")
PROCMOND = os.path.join(BIN, "procmond")
ROOT = os.path.join(os.path.dirname(__file__), "..")
ADMIN = "admin.test"  # agent.admins' default is admin.*


def wait_for(pred, timeout=10.0, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


AGENT_CONFIG = """\
broker:
  mode: {mode}
  embedded:
    transport:
      type: unix_socket
      path: {sock}
  standalone:
    socket: {sock}
agent:
  audit_log: {audit}
  heartbeat: {{interval_ms: 200, timeout_ms: 150, retries: 1, dead_after: 3}}
  health_check: {{interval_ms: 1000}}
  restart: {{delay_ms: 100, delay_max_ms: 1000, stop_timeout_ms: 1000}}
  rpc:
    lifecycle: {{timeout_ms: 2000}}
  collectors:
    - id: p1
      type: process
      command: [{procmond}]
      scan_interval_ms: 100
      compute_hashes: true
    - id: spare
      type: process
      command: [{procmond}]
      enabled: false
"""


class Agent:
    def __init__(self, mode, pb=None, broker_extra="", agent_extra="", extra=""):
        self.mode = mode
        self.extra = extra  # more top-level sections (bridge:)
        self.pb = pb
        self.broker_extra = broker_extra  # more broker: keys, indented
        self.agent_extra = agent_extra    # more agent: keys, indented
        self.dir = tempfile.mkdtemp(prefix="ag", dir="/tmp")
        self.sock = os.path.join(self.dir, "b.sock")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        self.busrtd = None

    def __enter__(self):
        if self.mode == "standalone":
            self.busrtd = Busrtd().__enter__()
            self.sock = self.busrtd.path
        self.cfg = os.path.join(self.dir, "agent.yaml")
        with open(self.cfg, "w") as f:
            f.write(AGENT_CONFIG.format(mode=self.mode, sock=self.sock, audit=self.audit,
                                        procmond=PROCMOND)
                    .replace("broker:\n", "broker:\n" + self.broker_extra, 1)
                    .replace("agent:\n", "agent:\n" + self.agent_extra, 1) + self.extra)
        self.errpath = os.path.join(self.dir, "stderr")
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen([AGENT, "--config", self.cfg, "--log-level", "info"],
                                     stderr=self.err)
        self.ctl = wait_for(self._connect, what="the agent's broker")
        wait_for(self._p1_running, what="procmond running")
        return self

    def _p1_running(self):
        try:  # standalone: the agent may not be registered yet
            return self.status("p1").state == self.pb.CollectorStatus.RUNNING
        except AssertionError:
            return False

    def _connect(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}: {self.log()}")
        try:  # root may register admin.*: the agent's lifecycle.* callers
            return connect(self.sock, ADMIN)
        except OSError:
            return None

    def log(self):
        self.err.flush()
        return open(self.errpath).read()

    def call(self, target, method, msg, via=None):
        """method on target: the agent's as ADMIN (self.ctl); a collector's
        health.* as a monitor; anything else as via (default test.ctl, a
        trusted tool a collector refuses)."""
        data = msg.SerializeToString() if msg is not None else b""
        if via is None and target == "daemoneye-agent":
            return self.ctl.rpc(method, data, target=target)
        if via is None:
            via = "monitor.test" if method.startswith("health.") else "test.ctl"
        c = connect(self.sock, via)
        try:
            return c.rpc(method, data, target=target)
        finally:
            c.close()

    def collector_audit(self, cid):
        """What collector cid served, from its own audit file."""
        path = os.path.join(self.dir, f"collector.process.{cid}.audit.jsonl")
        if not os.path.exists(path):
            return []
        return [json.loads(x) for x in open(path).read().splitlines()]

    def status(self, cid):
        r = self.call("daemoneye-agent", "lifecycle.status",
                      self.pb.CollectorStatusRequest(collector_id=cid))
        assert r[0] == "reply", r
        resp = self.pb.CollectorStatusResponse.FromString(r[2])
        assert len(resp.collectors) == 1
        return resp.collectors[0]

    def __exit__(self, et, ev, tb):
        self.ctl.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("agent did not stop on SIGTERM")
        self.err.close()
        log = open(self.errpath).read()
        if self.busrtd:
            self.busrtd.__exit__(et, ev, tb)
        if et is None:
            assert rc == 0, f"agent exited {rc}: {log}"
            assert "AddressSanitizer" not in log and "runtime error" not in log, log
            # every collector it started is gone
            out = subprocess.run(["pgrep", "-f", f"procmond --connect {self.sock}"],
                                 capture_output=True, text=True).stdout
            assert out == "", out


@pytest.fixture(params=["embedded", "standalone"])
def agent(request, pb):
    a = Agent(request.param)
    a.pb = pb
    with a:
        yield a


def read_events(pb, c, seconds):
    """Every BusrtEvent c receives within seconds."""
    return list(events(pb, c, seconds))


def test_discovery_and_termination_of_exactly_our_processes(agent):
    pb = agent.pb
    watch = connect(agent.sock, "test.watch")
    assert watch.subscribe("events/process/lifecycle", "events/process/metadata") == 1
    time.sleep(0.3)  # a cycle or two: the subscription predates our processes
    sleeper = subprocess.Popen(["sleep", "0.8"])
    shell = subprocess.Popen(["sh", "-c", "sleep 0.7 & echo $!; wait"],
                             stdout=subprocess.PIPE, text=True)
    grandchild = int(shell.stdout.readline())
    sleeper.wait()
    shell.wait()
    evs = read_events(pb, watch, 1.0)  # several cycles after the ends
    ours = {sleeper.pid: ("sleep", os.getpid()), shell.pid: ("sh", os.getpid()),
            grandchild: ("sleep", shell.pid)}
    for pid, (name, ppid) in ours.items():
        mine = [e for e in evs if e.process_event.process.pid == pid]
        life = [e for e in mine if e.topic == "events/process/lifecycle"]
        kinds = [e.process_event.event_type for e in life]
        assert kinds == [pb.ProcessEvent.DISCOVERY, pb.ProcessEvent.TERMINATION], (pid, mine)
        # the termination carries the process as last seen
        last = life[1].process_event.process
        assert last.name == name and last.ppid == ppid
        exe = os.path.realpath(f"/usr/bin/{name}")
        assert os.path.realpath(last.executable_path) == exe, last.executable_path
        # a discovery caught between fork and exec is followed by the update
        first = life[0].process_event.process
        assert first.ppid == ppid
        if first.name != name:
            assert any(e.topic == "events/process/metadata" and
                       e.process_event.process.name == name for e in mine), mine
        assert life[0].sequence < life[1].sequence
        assert life[0].incarnation == life[1].incarnation
        assert life[0].source_collector == "collector.process.p1"
    # sequence numbers of one incarnation strictly increase as received
    for inc in {e.incarnation for e in evs}:
        seqs = [e.sequence for e in evs if e.incarnation == inc]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    watch.close()


def test_sigkill_restarts_via_sigchld(agent):
    before = agent.status("p1")
    os.kill(before.pid, signal.SIGKILL)
    after = wait_for(lambda: (lambda s: s if s.state == agent.pb.CollectorStatus.RUNNING
                              and s.pid != before.pid else None)(agent.status("p1")),
                     what="a restarted procmond")
    assert after.restarts >= before.restarts + 1
    assert after.incarnation > before.incarnation
    assert "killed by signal 9" in agent.log()


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_agent_crash_takes_its_collectors_down(pb):
    """Standalone: a SIGKILLed agent leaves no procmond behind (the kernel
    sends it SIGTERM: PR_SET_PDEATHSIG), and the restarted agent starts and
    supervises its own."""
    a = Agent("standalone")
    a.pb = pb
    with a:
        pid = a.status("p1").pid
        a.ctl.close()
        a.proc.kill()
        a.proc.wait(timeout=10)
        try:
            wait_for(lambda: _gone(pid), what="procmond to exit with its agent")
        finally:  # whatever happens, the fixture stops a live agent
            a.proc = subprocess.Popen([AGENT, "--config", a.cfg, "--log-level", "info"],
                                      stderr=a.err)
            a.ctl = wait_for(a._connect, what="the restarted agent")
        wait_for(a._p1_running, what="the restarted agent's procmond")
        assert a.status("p1").pid != pid


def test_sigstop_declared_dead_and_restarted(agent):
    before = agent.status("p1")
    os.kill(before.pid, signal.SIGSTOP)
    after = wait_for(lambda: (lambda s: s if s.state == agent.pb.CollectorStatus.RUNNING
                              and s.pid != before.pid else None)(agent.status("p1")),
                     what="a replaced procmond")
    log = agent.log()
    assert "declared dead" in log and "heartbeat failed (3 of 3" in log, log
    assert not os.path.exists(f"/proc/{before.pid}") or \
        open(f"/proc/{before.pid}/stat").read().split()[2] == "Z"
    assert after.restarts > before.restarts


def test_health_to_monitors_config_only_to_the_agent(agent):
    """A collector answers health.* to the agent and to monitors, and its
    config.* and lifecycle.* only to the agent: anyone else gets -32003
    (access denied) and the refusal is in the collector's audit file."""
    pb, p1 = agent.pb, "collector.process.p1"
    r = agent.call(p1, "health.check", pb.HealthCheckRequest(include_metrics=True))
    h = pb.HealthCheckResponse.FromString(r[2])
    assert h.status == pb.HealthCheckResponse.HEALTHY
    assert h.metrics["cycles"] >= 1 and h.metrics["scan_interval_ms"] == 100
    r = agent.call(p1, "health.metrics", pb.MetricsRequest())
    assert pb.MetricsResponse.FromString(r[2]).metrics["events_failed"] == 0
    good = pb.CollectorConfig(collector_type="process", scan_interval_ms=5000)
    for via in ("test.ctl", "monitor.test"):
        r = agent.call(p1, "config.update", pb.UpdateConfigRequest(new_config=good),
                       via=via)
        assert r[0] == "error" and r[1] == -32003, r
        assert r[2] == f"access denied: {via} may not call config.update", r
    r = agent.call(p1, "config.get", pb.GetConfigRequest())
    assert r[0] == "error" and r[1] == -32003, r
    r = agent.call(p1, "lifecycle.stop", pb.StopCollectorRequest())
    assert r[0] == "error" and r[1] == -32003, r
    r = agent.call(p1, "health.check", pb.HealthCheckRequest(), via="test.ctl")
    assert r[0] == "error" and r[1] == -32003, r
    # nothing changed: the interval is the agent's, the collector runs on
    r = agent.call(p1, "health.check", pb.HealthCheckRequest(include_metrics=True))
    assert pb.HealthCheckResponse.FromString(r[2]).metrics["scan_interval_ms"] == 100
    assert agent.status("p1").state == pb.CollectorStatus.RUNNING
    # busrt-cli --proto as a monitor: key=value in, JSON out
    cli = os.path.join(BIN, "busrt-cli")
    out = subprocess.run([cli, "-s", agent.sock, "-n", "monitor.cli", "--proto", "rpc",
                          "call", p1, "health.check", "include_metrics=true"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "HEALTHY"
    # another collector's id is refused, not silently answered
    r = agent.call(p1, "health.check", pb.HealthCheckRequest(collector_id="p9"))
    assert r[0] == "error" and r[1] == -32001
    recs = agent.collector_audit("p1")
    denied = [x for x in recs if x["dir"] == "denied"]
    assert {(x["sender"], x["method"]) for x in denied} >= {
        ("test.ctl", "config.update"), ("monitor.test", "config.update"),
        ("test.ctl", "config.get"), ("test.ctl", "lifecycle.stop"),
        ("test.ctl", "health.check")}, recs
    assert all(x["result"] == -32003 and x["target"] == p1 for x in denied)
    assert any(x["dir"] == "served" and x["sender"] == "daemoneye-agent" and
               x["method"] == "health.heartbeat" for x in recs)
    assert any(x["dir"] == "served" and x["sender"] == "monitor.cli" for x in recs)


def test_config_round_trip_from_its_agent(pb, tmp_path):
    """procmond alone on busrtd, its agent named by --agent: that name's
    config.* is served (validated, applied); another's is not."""
    with Busrtd() as b:
        audit = str(tmp_path / "p.audit.jsonl")
        p = subprocess.Popen([PROCMOND, "--connect", b.path, "--id", "solo",
                              "--agent", "test.agent", "--audit", audit,
                              "--interval-ms", "100"], stderr=subprocess.PIPE)
        try:
            ag = wait_for(lambda: _try_connect(b.path, "test.agent"), what="busrtd")
            solo = "collector.process.solo"

            def call(method, msg):
                return ag.rpc(method, msg.SerializeToString(), target=solo)
            def registered():
                try:  # NOT_REGISTERED (an assertion) until it is
                    return call("config.get", pb.GetConfigRequest())[0] == "reply"
                except AssertionError:
                    return False
            wait_for(registered, what="procmond registered")
            r = call("config.get", pb.GetConfigRequest())
            assert pb.GetConfigResponse.FromString(r[2]).config.scan_interval_ms == 100
            bad = pb.CollectorConfig(collector_type="process", scan_interval_ms=5)
            r = call("config.validate", pb.ValidateConfigRequest(config=bad))
            v = pb.ValidateConfigResponse.FromString(r[2])
            assert not v.valid and v.validation_errors[0].field == "scan_interval_ms"
            r = call("config.update", pb.UpdateConfigRequest(new_config=bad))
            u = pb.UpdateConfigResponse.FromString(r[2])
            assert not u.success and u.validation_errors
            good = pb.CollectorConfig(collector_type="process", scan_interval_ms=50,
                                      compute_hashes=True)
            r = call("config.validate", pb.ValidateConfigRequest(config=good))
            assert pb.ValidateConfigResponse.FromString(r[2]).valid
            r = call("config.update", pb.UpdateConfigRequest(new_config=good))
            assert pb.UpdateConfigResponse.FromString(r[2]).success
            r = call("config.get", pb.GetConfigRequest(collector_id="solo"))
            assert pb.GetConfigResponse.FromString(r[2]).config.scan_interval_ms == 50
            # through busrt-cli --proto as the agent: key=value in, JSON out
            ag.close()
            cli = os.path.join(BIN, "busrt-cli")
            out = subprocess.run([cli, "-s", b.path, "-n", "test.agent", "--proto",
                                  "rpc", "call", solo, "config.update",
                                  "new_config.scan_interval_ms=80"],
                                 capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["success"] is True
            ag = connect(b.path, "test.agent")
            # daemoneye-agent is nobody to this one
            other = connect(b.path, "test.other")
            r = other.rpc("config.update", good.SerializeToString(), target=solo)
            assert r[0] == "error" and r[1] == -32003, r
            other.close()
            r = call("config.get", pb.GetConfigRequest())
            assert pb.GetConfigResponse.FromString(r[2]).config.scan_interval_ms == 80
            ag.close()
        finally:
            p.terminate()
            p.wait(timeout=10)
        recs = [json.loads(x) for x in open(audit).read().splitlines()]
        assert [x["method"] for x in recs if x["dir"] == "denied"] == ["config.update"]
        assert sum(x["dir"] == "served" and x["method"] == "config.update" for x in recs) == 3
        assert oct(os.stat(audit).st_mode & 0o777) == "0o600"
    # a bad --agent or an audit file it cannot open: exit 2, said why
    r = subprocess.run([PROCMOND, "--connect", "/tmp/x", "--id", "x", "--agent", ""],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--agent" in r.stderr, r.stderr
    r = subprocess.run([PROCMOND, "--connect", "/tmp/x", "--id", "x", "--audit",
                        "/nonexistent/dir/a.jsonl"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "/nonexistent/dir/a.jsonl" in r.stderr, r.stderr


def _try_connect(path, name):
    try:
        return connect(path, name)
    except OSError:
        return None


def test_lifecycle_start_stop_restart(agent):
    pb = agent.pb
    assert agent.status("spare").state == pb.CollectorStatus.STOPPED
    r = agent.call("daemoneye-agent", "lifecycle.start",
                   pb.StartCollectorRequest(collector_id="spare"))
    assert pb.StartCollectorResponse.FromString(r[2]).success
    wait_for(lambda: agent.status("spare").state == pb.CollectorStatus.RUNNING,
             what="spare running")
    r = agent.call("collector.process.spare", "lifecycle.status",
                   pb.CollectorStatusRequest())
    assert r[0] == "error" and r[1] == -32003, r  # only the agent may ask
    r = agent.call("daemoneye-agent", "lifecycle.stop",
                   pb.StopCollectorRequest(collector_id="spare"))
    assert pb.StopCollectorResponse.FromString(r[2]).success
    wait_for(lambda: agent.status("spare").state == pb.CollectorStatus.STOPPED,
             what="spare stopped")
    old = agent.status("p1").pid
    r = agent.call("daemoneye-agent", "lifecycle.restart",
                   pb.RestartCollectorRequest(collector_id="p1"))
    assert pb.RestartCollectorResponse.FromString(r[2]).success
    wait_for(lambda: (lambda s: s.state == pb.CollectorStatus.RUNNING and s.pid != old)(
        agent.status("p1")), what="p1 restarted")
    r = agent.call("daemoneye-agent", "lifecycle.start",
                   pb.StartCollectorRequest(collector_id="nobody"))
    assert r[0] == "error" and r[1] == -32001 and "nobody" in r[2]
    # the audit log has what came in and what went out
    lines = open(agent.audit).read().splitlines()
    recs = [json.loads(x) for x in lines]
    assert any(x["dir"] == "in" and x["method"] == "lifecycle.restart" and
               x["sender"] == ADMIN and x["result"] == 0 for x in recs)
    assert any(x["dir"] == "in" and x["method"] == "lifecycle.start" and
               x["result"] == -32001 for x in recs)
    assert any(x["dir"] == "out" and x["method"] == "health.heartbeat" and
               x["target"] == "collector.process.p1" for x in recs)
    # and the health check it asks once a collector runs: answered
    assert any(x["dir"] == "out" and x["method"] == "health.check" and
               x["target"] == "collector.process.p1" and x["result"] == 0 and
               x["detail"].startswith("status 0") for x in recs), lines


def test_bad_input_is_an_error_or_a_counted_drop(agent):
    pb = agent.pb
    mon = connect(agent.sock, "monitor.bad")
    r = mon.rpc("health.check", b"\xff\xff\xff", target="collector.process.p1")
    assert r[0] == "error" and r[1] == -32602
    mon.close()
    r = agent.ctl.rpc("lifecycle.status", b"\x0a\x05ab", target="daemoneye-agent")
    assert r[0] == "error" and r[1] == -32602
    r = agent.ctl.rpc("no.such", b"", target="daemoneye-agent")
    assert r[0] == "error" and r[1] == -32601
    # a tool may not forge events (the default ACL: 0x79) ...
    tool = connect(agent.sock, "test.rogue")
    assert tool.publish("events/process/lifecycle", b"\xff\x01garbage") == 0x79
    tool.close()
    # ... and what a collector sends that does not decode is dropped, counted
    rogue = connect(agent.sock, "collector.process.rogue")
    assert rogue.publish("events/process/lifecycle", b"\xff\x01garbage") == 1
    wait_for(lambda: "dropped a malformed event" in agent.log(), what="the drop")
    # everything still answers
    assert agent.status("p1").state == pb.CollectorStatus.RUNNING
    r = agent.call("collector.process.p1", "health.check", pb.HealthCheckRequest())
    assert r[0] == "reply"
    rogue.close()


def test_invalid_config_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "a.yaml"
    cfg.write_text("agent:\n  collectors:\n    - id: p1\n      command: [x]\n"
                   "      scan_interval_ms: 5\n")
    p = subprocess.run([AGENT, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2
    assert f"{cfg}:5: agent.collectors.scan_interval_ms" in p.stderr, p.stderr
    cfg.write_text("agent:\n  colectors: []\n")
    p = subprocess.run([AGENT, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2 and "agent.colectors: unknown key" in p.stderr, p.stderr
    cfg.write_text("agent:\n  collectors:\n    - id: a.b\n      command: x\n")
    p = subprocess.run([AGENT, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2 and "agent.collectors.id" in p.stderr, p.stderr
    p = subprocess.run([AGENT, "--bogus"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "usage" in p.stderr
    p = subprocess.run([PROCMOND, "--id", "x"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--connect" in p.stderr
    p = subprocess.run([PROCMOND, "--connect", "/tmp/x", "--id", "x", "--interval-ms", "5"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--interval-ms" in p.stderr
    # busrtd accepts the agent's file (the agent: section is checked, not used)
    cfg.write_text("broker:\n  mode: standalone\nagent:\n  name: x\n")
    with Busrtd(config=cfg.read_text()):
        pass


def test_make_run_demo():
    """make run's script: every step it checks holds (it exits non-zero
    otherwise) and it leaves nothing running."""
    p = subprocess.run([os.path.join(ROOT, "scripts", "daemoneye-demo.sh"), BIN],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "DISCOVERY pid=" in p.stdout and "TERMINATION pid=" in p.stdout
    assert '"restarts": 1' in p.stdout and p.stdout.rstrip().endswith("== ok")


def test_lifecycle_requests_checked(agent):
    pb, ag = agent.pb, "daemoneye-agent"
    r = agent.call(ag, "lifecycle.start",
                   pb.StartCollectorRequest(collector_id="spare", collector_type="network"))
    assert r[0] == "error" and r[1] == -32602 and "type process" in r[2]
    bad = pb.CollectorConfig(scan_interval_ms=1)
    r = agent.call(ag, "lifecycle.start",
                   pb.StartCollectorRequest(collector_id="spare", config=bad))
    assert r[0] == "error" and r[1] == -32602 and "scan_interval_ms" in r[2]
    good = pb.CollectorConfig(scan_interval_ms=70, compute_hashes=False, max_processes=5)
    r = agent.call(ag, "lifecycle.start",
                   pb.StartCollectorRequest(collector_id="spare", config=good))
    assert pb.StartCollectorResponse.FromString(r[2]).success
    wait_for(lambda: agent.status("spare").state == pb.CollectorStatus.RUNNING,
             what="spare running")
    # it runs with what the request said
    r = agent.call("collector.process.spare", "health.check",
                   pb.HealthCheckRequest(include_metrics=True))
    m = pb.HealthCheckResponse.FromString(r[2]).metrics
    assert m["scan_interval_ms"] == 70 and m["processes"] <= 5, m
    r = agent.call(ag, "lifecycle.status", pb.CollectorStatusRequest())
    assert {c.collector_id for c in pb.CollectorStatusResponse.FromString(r[2]).collectors} \
        == {"p1", "spare"}
    r = agent.call(ag, "lifecycle.stop", pb.StopCollectorRequest(collector_id="spare",
                                                                 force=True))
    assert pb.StopCollectorResponse.FromString(r[2]).success
    wait_for(lambda: agent.status("spare").state == pb.CollectorStatus.STOPPED,
             what="spare stopped")
    for m, msg in (("lifecycle.stop", pb.StopCollectorRequest(collector_id="x")),
                   ("lifecycle.restart", pb.RestartCollectorRequest(collector_id="x")),
                   ("lifecycle.status", pb.CollectorStatusRequest(collector_id="x"))):
        r = agent.call(ag, m, msg)
        assert r[0] == "error" and r[1] == -32001, (m, r)
    # a collector asked to stop itself by anyone but the agent refuses
    old = agent.status("p1").pid
    r = agent.call("collector.process.p1", "lifecycle.stop", pb.StopCollectorRequest())
    assert r[0] == "error" and r[1] == -32003, r
    # and admin.* may not even send it one (the default ACL: the agent only)
    stop = b"\x01\x01\x00\x00\x00lifecycle.stop\x00"
    assert agent.ctl.message("collector.process.p1", stop, qos=1) == 0x79
    time.sleep(0.3)
    assert agent.status("p1").pid == old


def test_procmond_alone(tmp_path):
    with Busrtd() as b:
        p = subprocess.run([PROCMOND, "--connect", b.path, "--id", "solo", "--interval-ms",
                            "10", "--cycles", "3", "--no-hash", "--max-processes", "4"],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p.stderr
        stats = json.loads(p.stderr.strip().splitlines()[-1].split("procmond: ", 1)[1])
        assert stats["cycles"] == 3 and stats["processes"] <= 4 and stats["hashed"] == 0
        assert stats["events"] == stats["acked"] >= 1
    for args, what in ((["--id", "a.b"], "--id"), (["--id", "x", "--max-processes", "-1"],
                                                     "--max-processes"),
                       (["--id", "x", "--cycles", "0"], "--cycles"),
                       (["--id", "x", "extra"], "usage")):
        p = subprocess.run([PROCMOND, "--connect", "/tmp/none.sock", *args],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and what in p.stderr, (args, p.stderr)
    assert subprocess.run([PROCMOND, "--help"], capture_output=True).returncode == 0
    # the broker is not there: procmond keeps trying (reconnect), SIGTERM ends it
    p = subprocess.Popen([PROCMOND, "--connect", str(tmp_path / "none.sock"), "--id", "x"],
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0


def test_agent_arguments(tmp_path):
    for args in (["--log-level", "loud"], ["extra"], ["--nope"]):
        p = subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and "usage" in p.stderr, (args, p.stderr)
    assert subprocess.run([AGENT, "--help"], capture_output=True).returncode == 0
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f"agent:\n  audit_log: {tmp_path}/no/such/dir/a.jsonl\n")
    p = subprocess.run([AGENT, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2 and "audit log" in p.stderr
    p = subprocess.run([AGENT, "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "missing.yaml" in p.stderr
    # embedded broker's socket path taken by a live broker: a clear error
    with Busrtd() as b:
        cfg.write_text(f"broker:\n  embedded:\n    transport:\n      type: unix_socket\n"
                       f"      path: {b.path}\n")
        p = subprocess.run([AGENT, "--config", str(cfg)], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2 and b.path in p.stderr, p.stderr
