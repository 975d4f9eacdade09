# SPDX-License-Identifier: Apache-2.0
"""busrt-bridge against a real nats-server with JetStream on loopback:
every event a collector publishes lands in the stream exactly once, under
its own id, even when nats-server is SIGKILLed mid-stream and started
again; a full window stops the bridge reading (the publisher waits, no
frame dropped); bad configuration is refused with the key named. The
stream is read back with busrt-bridge --dump (a JetStream direct get of
every sequence), and the check is made here."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from busclient import BIN, Busrtd, connect, free_port
from test_daemoneye import Agent, wait_for

BRIDGE = os.path.join(BIN, "busrt-bridge")
NATS = shutil.which("nats-server")

pytestmark = pytest.mark.skipif(NATS is None, reason="nats-server not installed (ci/deps.sh test)")


class NatsJs:
    """nats-server -js on 127.0.0.1, file storage in a temp dir that
    survives kill(): start() again serves the same stream."""

    def __init__(self, tls=None, auth=()):
        """tls: a directory with ca.pem, srv.pem/key: TLS, client
        certificates signed by ca.pem required; auth: (user, password)."""
        self.dir = tempfile.mkdtemp(prefix="nj", dir="/tmp")
        self.port = free_port()
        self.url = f"{'tls' if tls else 'nats'}://127.0.0.1:{self.port}"
        self.proc = None
        self.log = open(os.path.join(self.dir, "log"), "a")
        self.tls = [] if not tls else [
            "--tls", "--tlscert", f"{tls}/srv.pem", "--tlskey", f"{tls}/srv.key",
            "--tlsverify", "--tlscacert", f"{tls}/ca.pem"]
        if auth:
            self.tls += ["--user", auth[0], "--pass", auth[1]]

    def start(self):
        self.proc = subprocess.Popen(
            [NATS, "-js", "-sd", os.path.join(self.dir, "store"), "-a", "127.0.0.1",
             "-p", str(self.port), *self.tls], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, open(self.log.name).read()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Bridge:
    def __init__(self, broker, nats, *args, config=None):
        self.dir = tempfile.mkdtemp(prefix="bb", dir="/tmp")
        argv = [BRIDGE, "--connect", broker.path, "--host", "h1", "--log-level", "debug"]
        if "--nats" not in args:
            argv += ["--nats", nats.url]
        if config is not None:
            path = os.path.join(self.dir, "bridge.yaml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config", path]
        self.argv = argv + list(args)
        self.err_path = os.path.join(self.dir, "stderr")

    def __enter__(self):
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True)
        return self

    def log(self):
        if not self.err.closed:
            self.err.flush()
        return open(self.err_path).read()

    def wait_registered(self, broker, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            if "registered as" in self.log() and "NATS connected" in self.log():
                return
            time.sleep(0.05)
        raise AssertionError("the bridge did not start: " + self.log())

    def stop(self):
        """SIGTERM: the counts it prints, and its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.err.close()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return self.proc.returncode, json.loads(lines[-1]) if lines else None

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def dump(nats, stream="DAEMONEYE", missing_ok=False, config=None):
    args = ["--config", config] if config else []
    r = subprocess.run([BRIDGE, "--dump", "--nats", nats.url, "--stream", stream, *args],
                       capture_output=True, text=True, timeout=120)
    if missing_ok and r.returncode == 1 and "no such stream" in r.stderr:
        return []
    assert r.returncode == 0, r.stderr
    return [json.loads(ln) for ln in r.stdout.splitlines()]


def event(pb, cid, inc, seq):
    ev = pb.BusrtEvent(event_id=f"collector.process.{cid}/{inc}/{seq}",
                       sequence=seq, incarnation=inc)
    ev.process_event.event_type = pb.ProcessEvent.DISCOVERY
    ev.process_event.process.pid = 1000 + seq
    ev.process_event.process.name = f"p{seq}"
    return ev.SerializeToString()


def wait_stored(nats, want, timeout=60, config=None):
    deadline = time.monotonic() + timeout
    while True:
        got = dump(nats, missing_ok=True, config=config)
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def check_exactly_once(pb, msgs, cid, inc, n):
    """Every event of (cid, inc) 1..n once, under its own id and subject."""
    ids = [m["msg_id"] for m in msgs]
    want = [f"h1/collector.process.{cid}/{inc}/{s}" for s in range(1, n + 1)]
    dups = len(ids) - len(set(ids))
    missing = sorted(set(want) - set(ids), key=lambda i: int(i.rsplit("/", 1)[1]))
    assert not dups and not missing, \
        f"{dups} duplicated, {len(missing)} missing (first {missing[:5]})"
    for m in msgs:
        assert m["subject"] == "daemoneye.h1.events.process.lifecycle", m
        assert m["sender"] == f"collector.process.{cid}", m
        assert m["topic"] == "events/process/lifecycle", m
        ev = pb.BusrtEvent.FromString(bytes.fromhex(m["data"]))
        assert m["msg_id"] == f"h1/{ev.event_id}", m
    # out of stream order is allowed (a re-send after a lost PubAck
    # lands behind later events), counted so a change shows
    seqs = [pb.BusrtEvent.FromString(bytes.fromhex(m["data"])).sequence for m in msgs]
    return sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)


def test_every_event_once_across_nats_sigkill_and_restart(pb):
    n = 6000
    with NatsJs() as nats, Busrtd() as broker, Bridge(broker, nats) as br:
        br.wait_registered(broker)
        col = connect(broker.path, "collector.process.t1")
        for seq in range(1, n + 1):
            col.publish("events/process/lifecycle", event(pb, "t1", 7, seq))
            if seq == 2000:
                nats.kill()  # mid-stream: in flight, PubAcks lost
            if seq == 4000:
                time.sleep(1.0)  # the bridge holds 2000 and retries
                nats.start()
        msgs = wait_stored(nats, n)
        rc, st = br.stop()
        log = br.log()
        assert rc == 0, log
        assert st["unstored"] == 0 and st["taken"] == n and st["events"] == n, st
        assert st["stored"] == n, st
        assert st["nats_disconnects"] >= 1 and st["resets"] >= 1, (st, log)
        assert "NATS reconnected" in log, log
        late = check_exactly_once(pb, msgs, "t1", 7, n)
        print(f"bridge counts {st}; {late} stored behind a later event")
        col.close()


def test_nats_down_at_start_then_up(pb):
    """No server yet: the bridge holds what it takes, and stores it all
    once a server comes (the stream created then)."""
    nats = NatsJs()
    try:
        with Busrtd() as broker, Bridge(broker, nats) as br:
            deadline = time.monotonic() + 10
            while "registered as" not in br.log():
                assert time.monotonic() < deadline, br.log()
                time.sleep(0.05)
            col = connect(broker.path, "collector.process.t2")
            for seq in range(1, 301):
                col.publish("events/process/lifecycle", event(pb, "t2", 3, seq))
            time.sleep(0.5)
            nats.start()
            msgs = wait_stored(nats, 300)
            rc, st = br.stop()
            assert rc == 0 and st["stored"] == 300 and st["unstored"] == 0, (st, br.log())
            check_exactly_once(pb, msgs, "t2", 3, 300)
            col.close()
    finally:
        nats.__exit__()


def test_full_window_stops_reading_and_loses_nothing(pb):
    """A 64-frame window with NATS away: the bridge stops reading, the
    broker holds the publisher (block), and all of it is stored later."""
    cfg = "bridge:\n  window: { frames: 64 }\n"
    with NatsJs() as nats, Busrtd() as broker, Bridge(broker, nats, config=cfg) as br:
        br.wait_registered(broker)
        nats.kill()
        time.sleep(0.3)
        col = connect(broker.path, "collector.process.t3")
        for seq in range(1, 2001):
            col.publish("events/process/lifecycle", event(pb, "t3", 1, seq))
        time.sleep(0.5)
        nats.start()
        msgs = wait_stored(nats, 2000)
        rc, st = br.stop()
        assert rc == 0 and st["stored"] == 2000 and st["unstored"] == 0, (st, br.log())
        assert st["paused"] >= 1, st
        check_exactly_once(pb, msgs, "t3", 1, 2000)
        col.close()


def test_non_event_frames_get_per_sender_ids(pb):
    with NatsJs() as nats, Busrtd() as broker, \
            Bridge(broker, nats, "--mask", "fleet/#") as br:
        br.wait_registered(broker)
        tool = connect(broker.path, "tool.x")
        for i in range(5):
            tool.publish("fleet/a.b/c", b"raw%d" % i)
        msgs = wait_stored(nats, 5)
        br.proc.send_signal(signal.SIGUSR1)  # the counts, now
        now = json.loads(br.proc.stdout.readline())
        assert now["stored"] == 5 and now["unstored"] == 0, now
        rc, st = br.stop()
        assert rc == 0 and st["stored"] == 5 and st["events"] == 0, st
        assert [m["subject"] for m in msgs] == ["daemoneye.h1.fleet.a_b.c"] * 5
        ids = [m["msg_id"] for m in msgs]
        assert len(set(ids)) == 5 and all(i.startswith("h1/tool.x/") for i in ids), ids
        assert [bytes.fromhex(m["data"]) for m in msgs] == [b"raw%d" % i for i in range(5)]
        tool.close()


def test_mutual_tls_to_nats(pb, tmp_path):
    """bridge.nats.tls: the server verified against ca_file, our
    certificate presented; without it the server refuses and nothing is
    stored (the frames wait in the window)."""
    from test_tls import make_ca, make_cert
    d = str(tmp_path)
    make_ca(d, "ca")
    make_cert(d, "ca", "srv", "nats", san="IP:127.0.0.1")
    make_cert(d, "ca", "cli", "daemoneye-bridge")
    good = (f"bridge:\n  nats:\n    tls: {{ca_file: {d}/ca.pem, cert_file: {d}/cli.pem, "
            f"key_file: {d}/cli.key}}\n")
    nocert = f"bridge:\n  nats:\n    tls: {{ca_file: {d}/ca.pem}}\n"
    with NatsJs(tls=d) as nats, Busrtd() as broker:
        with Bridge(broker, nats, config=nocert) as br:
            deadline = time.monotonic() + 10
            while "registered as" not in br.log():
                assert time.monotonic() < deadline, br.log()
                time.sleep(0.05)
            col = connect(broker.path, "collector.process.t5")
            for seq in range(1, 11):
                col.publish("events/process/lifecycle", event(pb, "t5", 1, seq))
            time.sleep(1.0)
            rc, st = br.stop()
            assert "NATS connected" not in br.log(), br.log()
            assert st["stored"] == 0 and st["unstored"] == 10 and rc == 1, st
            col.close()
        with Bridge(broker, nats, config=good) as br:
            br.wait_registered(broker)
            col = connect(broker.path, "collector.process.t5")
            for seq in range(1, 101):
                col.publish("events/process/lifecycle", event(pb, "t5", 2, seq))
            cfg = os.path.join(br.dir, "bridge.yaml")
            msgs = wait_stored(nats, 100, config=cfg)
            rc, st = br.stop()
            assert rc == 0 and st["stored"] == 100, (st, br.log())
            check_exactly_once(pb, msgs, "t5", 2, 100)
            col.close()


def test_user_and_password_in_the_url(pb):
    with NatsJs(auth=("bridge", "s3cret")) as nats, Busrtd() as broker:
        good = nats.url.replace("nats://", "nats://bridge:s3cret@")
        bad = nats.url.replace("nats://", "nats://bridge:wrong@")
        with Bridge(broker, nats, "--nats", bad) as br:
            time.sleep(1.0)
            assert br.proc.poll() is None, br.log()
            rc, st = br.stop()
            assert "NATS connected" not in br.log() and rc == 0, br.log()
        with Bridge(broker, nats, "--nats", good) as br:
            br.wait_registered(broker)
            col = connect(broker.path, "collector.process.t6")
            for seq in range(1, 51):
                col.publish("events/process/lifecycle", event(pb, "t6", 1, seq))
            nats.url = good  # --dump authenticates the same way
            msgs = wait_stored(nats, 50)
            rc, st = br.stop()
            assert rc == 0 and st["stored"] == 50, (st, br.log())
            check_exactly_once(pb, msgs, "t6", 1, 50)
            col.close()


@pytest.mark.parametrize("yaml,what", [
    ("bridge:\n  window: { frames: 1 }\n", "bridge.window.frames: expected an integer"),
    ("bridge:\n  stream: { name: a.b }\n", "bridge.stream.name: a stream name has no"),
    ("bridge:\n  nats: { urls: [] , colour: 1 }\n", "bridge.nats.colour: unknown key"),
    ("bridge:\n  masks: nope\n", "bridge.masks: expected a list of masks"),
    ("bridge:\n  subject_prefix: 'a..b'\n", "not a NATS subject prefix"),
    ("bridge:\n  frobnicate: 1\n", "bridge.frobnicate: unknown key"),
])
def test_bad_config_is_refused(tmp_path, yaml, what):
    p = tmp_path / "b.yaml"
    p.write_text(yaml)
    r = subprocess.run([BRIDGE, "--config", str(p), "--connect", "/nonexistent"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and what in r.stderr, r.stderr


def test_bridge_section_is_checked_and_ignored_by_busrtd():
    """One file serves every program: busrtd accepts a valid bridge:
    section and refuses a broken one."""
    ok = "broker:\n  mode: standalone\nbridge:\n  stream: { name: FLEET }\n"
    with Busrtd(config=ok):
        pass
    with pytest.raises(RuntimeError, match="bridge.stream.nam: unknown key"):
        with Busrtd(config="bridge:\n  stream: { nam: FLEET }\n"):
            pass


def metrics(a, cid="p1"):
    r = a.call(f"collector.process.{cid}", "health.metrics", a.pb.MetricsRequest(collector_id=cid))
    assert r[0] == "reply", r
    return dict(a.pb.MetricsResponse.FromString(r[2]).metrics)


def test_embedded_in_the_agent_acknowledges_only_what_is_stored(pb):
    """agent.bridge: the agent's intake feeds the bridge, and procmond is
    told an event was processed only once JetStream stored it. NATS away:
    procmond keeps (retains) what the agent processed; NATS back: all of
    it is stored, each once, and procmond forgets it."""
    nats = NatsJs().start()
    try:
        extra = (f"bridge:\n  host: h1\n  nats: {{urls: ['{nats.url}']}}\n"
                 f"  ack_timeout_ms: 1000\n")
        port = free_port()
        with Agent("embedded", pb, agent_extra="  bridge: true\n", extra=extra,
                   broker_extra=f"  metrics: {{listen: '127.0.0.1:{port}'}}\n") as a:
            # the first cycles stored, and acknowledged
            wait_for(lambda: metrics(a)["retained"] == 0 and a.status("p1").last_sequence > 0,
                     timeout=30, what="the first events stored and acknowledged")
            nats.kill()
            procs = [subprocess.Popen(["sleep", "30"]) for _ in range(20)]
            try:
                # processed by the agent, not stored: procmond keeps them
                before = a.status("p1").last_sequence
                wait_for(lambda: a.status("p1").last_sequence >= before + 20, timeout=30,
                         what="the agent to process the new processes")
                time.sleep(1.0)  # heartbeats went by
                held = metrics(a)["retained"]
                print(f"processed {a.status('p1').last_sequence}, procmond retains {held}")
                assert held >= 20, f"procmond forgot {20 - held} events JetStream never stored"
                nats.start()
                wait_for(lambda: metrics(a)["retained"] == 0, timeout=60,
                         what="JetStream to store and procmond to forget")
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            st = a.status("p1")
            inc_seq = st.last_sequence
            msgs = wait_stored(nats, inc_seq)
            import urllib.request
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            prom = {ln.split()[0]: float(ln.split()[1]) for ln in text.decode().splitlines()
                    if ln.startswith("busrt_bridge_")}
            assert prom["busrt_bridge_nats_up"] == 1, prom
            assert prom["busrt_bridge_stored_total"] >= inc_seq, prom
            assert prom["busrt_bridge_taken_total"] >= prom["busrt_bridge_stored_total"], prom
        log = open(a.errpath).read()
        ids = [m["msg_id"] for m in msgs]
        assert len(ids) == len(set(ids)), "an event stored twice"
        evs = [pb.BusrtEvent.FromString(bytes.fromhex(m["data"])) for m in msgs]
        incs = {e.incarnation for e in evs}
        assert len(incs) == 1, incs  # procmond ran once
        seqs = sorted(e.sequence for e in evs)
        assert seqs[:inc_seq] == list(range(1, inc_seq + 1)), \
            f"missing {sorted(set(range(1, inc_seq + 1)) - set(seqs))[:10]}"
        assert "bridge: NATS reconnected" in log, log
        assert "not stored at exit" in log and ", 0 not stored at exit" in log, log
    finally:
        nats.__exit__()
