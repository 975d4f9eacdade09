# SPDX-License-Identifier: Apache-2.0
"""Who may do what on the bus, against the real binaries, with peers under
another uid (root runs the tests and drops to nobody with setpriv): the
default ACL's boundaries, every refusal counted and written down, a
reload with SIGHUP, and the impersonation of a restarting collector."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from busclient import Busrtd, connect, ACCESS, OK

HERE = os.path.dirname(os.path.abspath(__file__))
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")


def as_nobody(sock, name, *ops):
    """Runs acl_peer.py as uid/gid 65534; returns its results."""
    p = subprocess.run(NOBODY + [sys.executable, os.path.join(HERE, "acl_peer.py"), sock,
                                 name, json.dumps(list(ops))],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "PYTHONPATH": HERE})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def open_to_all(b):
    os.chmod(b.dir, 0o755)  # the socket is 0666 by configuration


SHARED = "broker:\n  socket_mode: '0666'\n  monitor_group: nogroup\n  acl: default\n"


def test_default_boundaries_for_another_uid():
    with Busrtd(config=SHARED) as b:
        open_to_all(b)
        # nobody takes none of the design's names, nor any other
        for name in ("daemoneye-agent", "collector.process.p1", "admin.x", "tool"):
            assert as_nobody(b.path, name)["register"] == ACCESS, name
        # a monitor (the monitor group): events/+/anomaly and nothing else
        col = connect(b.path, "collector.process.p1")  # root: trusted
        r = as_nobody(b.path, "monitor.n", ["sub", "events/#"], ["sub", "events/+/anomaly"],
                      ["pub", "events/process/anomaly"], ["msg", "daemoneye-agent"],
                      ["bcast", "*"], ["list"])
        assert r["register"] == OK
        assert r["results"][:5] == [ACCESS, OK, ACCESS, ACCESS, ACCESS]
        mine = [x for x in r["results"][5] if x["name"] == "monitor.n"][0]
        assert (mine["uid"], mine["gid"], mine["rule"]) == (65534, 65534, "default monitor")
        assert mine["pid"] > 1
        # what a collector publishes on its topics reaches the monitor
        mon = subprocess.Popen(NOBODY + [sys.executable, os.path.join(HERE, "acl_peer.py"),
                                         b.path, "monitor.m",
                                         json.dumps([["sub", "events/+/anomaly"],
                                                     ["read", 1.5]])],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": HERE})
        deadline = time.monotonic() + 10
        ctl = connect(b.path, "tool")
        while time.monotonic() < deadline:
            names = [x["name"] for x in ctl.rpc("client.list")[1]["clients"]]
            if "monitor.m" in names:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        assert col.publish("events/process/anomaly", b"seen") == OK
        assert col.publish("events/network/anomaly", b"not its type") == ACCESS
        assert ctl.publish("events/process/anomaly", b"forged") == ACCESS
        out, _ = mon.communicate(timeout=20)
        got = json.loads(out)["results"][1]
        assert got == [["publish", "collector.process.p1", "events/process/anomaly"]]
        st = ctl.rpc("stats")[1]
        assert st["denied_register"] == 4
        assert st["denied_subscribe"] == 1 and st["denied_publish"] == 3
        assert st["denied_send"] == 1 and st["denied_broadcast"] == 1
        log = open(b.stderr_path).read()
    assert "denied register collector.process.p1 (uid 65534 gid 65534" in log, log
    assert "denied publish tool: events/process/anomaly (uid 0" in log, log


def test_sighup_reload_cuts_and_a_bad_file_changes_nothing(tmp_path):
    with Busrtd(config=SHARED) as b:
        open_to_all(b)
        cfg = os.path.join(b.dir, "broker.yaml")
        mon = connect(b.path, "monitor.a")
        tool = connect(b.path, "tool")
        with open(cfg, "w") as f:  # a broken file: nothing changes
            f.write(SHARED.replace("  acl: default\n", "") +
                    "  acl: [{names: [x], who: {from: nowhere}}]\n")
        b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert tool.rpc("test")[0] == "reply" and mon.rpc("test")[0] == "reply"
        with open(cfg, "w") as f:  # tools only: the monitor is cut
            f.write(SHARED.replace("  acl: default\n", "") +
                    "  acl:\n    - {who: {uid: 0}, names: [tool], send: ['*']}\n")
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not mon.is_closed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mon.is_closed()
        assert tool.rpc("stats")[1]["disconnects_acl"] == 1
        assert as_nobody(b.path, "monitor.n")["register"] == ACCESS
        log = open(b.stderr_path).read()
    assert "SIGHUP" in log and "broker.acl[0].who.from: expected an address" in log, log
    assert "nothing changed" in log and "ACL from the file" in log, log


def test_busrtd_audit_file(tmp_path):
    """broker.audit_log: busrtd writes every refusal as a JSON line (who,
    what, the rule), 0600; a file it cannot open is exit 2 naming it."""
    audit = os.path.join(str(tmp_path), "busrtd.audit.jsonl")
    with Busrtd(config=SHARED + f"  audit_log: {audit}\n") as b:
        open_to_all(b)
        assert as_nobody(b.path, "collector.process.p1")["register"] == ACCESS
        tool = connect(b.path, "tool")
        assert tool.publish("events/process/lifecycle", b"\xffforged") == ACCESS
        tool.close()
        time.sleep(0.2)
    recs = [json.loads(x) for x in open(audit, encoding="utf-8").read().splitlines()]
    assert [(x["dir"], x["method"], x["sender"], x["target"], x["result"]) for x in recs] == [
        ("denied", "register", "collector.process.p1", "", 0x79),
        ("denied", "publish", "tool", "events/process/lifecycle", 0x79)], recs
    assert recs[0]["detail"].startswith("uid 65534 gid 65534 pid ")
    assert recs[1]["detail"].endswith("rule default trusted"), recs[1]
    assert oct(os.stat(audit).st_mode & 0o777) == "0o600"
    bad = tmp_path / "bad.yaml"
    bad.write_text("broker:\n  audit_log: /nonexistent/dir/a.jsonl\n")
    from busclient import BUSRTD
    r = subprocess.run([BUSRTD, "-B", str(tmp_path / "s.sock"), "--config", str(bad)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "/nonexistent/dir/a.jsonl: cannot open" in r.stderr, \
        r.stderr


def test_expected_broker_uid(tmp_path):
    """A client told the broker's uid (--broker-uid, broker.uid) refuses a
    broker that runs as another, even root; a uid that matches is fine."""
    from busclient import BIN
    cli = os.path.join(BIN, "busrt-cli")
    with Busrtd() as b:  # root
        r = subprocess.run([cli, "-s", b.path, "--broker-uid", "65534", "broker", "test"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and "uid 0" in r.stderr and "65534" in r.stderr, r.stderr
        r = subprocess.run([cli, "-s", b.path, "--broker-uid", "0", "broker", "test"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([cli, "-s", b.path, "--broker-uid", "x", "broker", "test"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "--broker-uid" in r.stderr
        # procmond the same way (and it keeps trying, as for a broker down)
        p = subprocess.Popen([os.path.join(BIN, "procmond"), "--connect", b.path, "--id", "u",
                              "--broker-uid", "65534"], stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        names = [x["name"] for x in connect(b.path, "tool").rpc("client.list")[1]["clients"]]
        p.terminate()
        err = p.communicate(timeout=10)[1]
        assert "collector.process.u" not in names
        assert "runs as uid 0, not 65534: not registering" in err, err
    # broker.uid is checked at load: a user that does not exist is an error
    cfg = tmp_path / "a.yaml"
    cfg.write_text("broker:\n  uid: no-such-user-here\n")
    r = subprocess.run([os.path.join(BIN, "daemoneye-agent"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and f"{cfg}:2: broker.uid" in r.stderr, r.stderr


def test_tcp_without_credentials_is_refused_by_default():
    with Busrtd(tcp=True, config="broker: {acl: default}\n") as b:
        from busclient import Client
        c = Client(("127.0.0.1", b.tcp_port))
        assert c.handshake("tool") == ACCESS


def test_impersonating_a_restarting_collector_is_refused_and_audited(pb):
    """The attack: kill procmond, take its name during the restart delay,
    answer the agent's heartbeats. Under the default ACL another uid
    cannot take the name, ever; the agent's audit trail has each try."""
    from test_daemoneye import Agent, wait_for
    a = Agent("embedded", pb, broker_extra="  socket_mode: '0666'\n  acl: default\n")
    with a:
        os.chmod(a.dir, 0o755)
        before = a.status("p1")
        os.kill(before.pid, signal.SIGKILL)
        tries = [as_nobody(a.sock, "collector.process.p1")["register"] for _ in range(4)]
        assert tries == [ACCESS] * 4
        assert as_nobody(a.sock, "daemoneye-agent")["register"] == ACCESS
        after = wait_for(lambda: (lambda s: s if s.state == pb.CollectorStatus.RUNNING
                                  and s.pid != before.pid else None)(a.status("p1")),
                         what="the real procmond back")
        assert after.pid != before.pid
        trail = [json.loads(x) for x in open(a.audit)]
        denied = [x for x in trail if x["dir"] == "denied"]
        assert len(denied) == 5, denied
        assert all(x["method"] == "register" and x["result"] == ACCESS and
                   x["detail"].startswith("uid 65534 gid 65534") for x in denied)
        assert [x["sender"] for x in denied].count("collector.process.p1") == 4


# ---- a socket nobody can squat ------------------------------------------------------
FAKE_BROKER = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
s.settimeout(10)
c, _ = s.accept()
c.settimeout(1.5)
got = b""
try:
    while True:
        b = c.recv(4096)
        if not b:
            break
        got += b
except socket.timeout:
    pass
print(len(got), flush=True)
"""


def test_clients_refuse_a_broker_that_is_somebody_else(tmp_path):
    """Another uid binds the socket first and plays broker: our clients
    check its credentials (SO_PEERCRED) and send it nothing, not even a
    name; the build before registered with it."""
    import tempfile
    d = tempfile.mkdtemp(prefix="sq", dir="/tmp")  # traversable by nobody
    os.chmod(d, 0o777)
    path = os.path.join(d, "b.sock")
    fake = subprocess.Popen(NOBODY + [sys.executable, "-c", FAKE_BROKER, path],
                            stdout=subprocess.PIPE, text=True)
    assert fake.stdout.readline().strip() == "ready"
    cli = subprocess.run([os.path.join(HERE, "..", "build", "bin", "busrt-cli")
                          if not os.environ.get("BUSRT_BIN") else
                          os.path.join(os.environ["BUSRT_BIN"], "busrt-cli"),
                          "-s", path, "publish", "t", "x"],
                         capture_output=True, text=True, timeout=20)
    got = int(fake.stdout.readline().strip())
    fake.wait(timeout=10)
    assert cli.returncode != 0
    assert "runs as uid 65534, neither root nor us (0): not registering" in cli.stderr, \
        cli.stderr
    assert got == 0, f"the fake broker received {got} bytes"
    os.unlink(path)
    os.rmdir(d)


def test_the_socket_directory_and_mode(tmp_path):
    from busclient import BUSRTD
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)  # others could replace the socket: refused
    p = subprocess.run([BUSRTD, "-B", str(d / "b.sock")], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0 and "group- or world-writable (mode 0777)" in p.stderr, p.stderr
    # a missing directory is made 0750; the socket has its mode from bind
    with Busrtd(config="broker:\n  socket_mode: '0660'\n") as b:
        st = os.stat(b.path)
        assert oct(st.st_mode & 0o777) == oct(0o660)
        sub = os.path.join(b.dir, "run")
        q = subprocess.Popen([BUSRTD, "-B", os.path.join(sub, "x.sock")],
                             stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(os.path.join(sub, "x.sock")):
                assert time.monotonic() < deadline and q.poll() is None
                time.sleep(0.02)
            assert oct(os.stat(sub).st_mode & 0o777) == oct(0o750)
        finally:
            q.send_signal(signal.SIGTERM)
            q.wait(timeout=10)
            os.rmdir(sub)  # busrtd removed its socket


def test_audit_trail_rotates_and_is_not_inherited(pb):
    """The agent's audit trail: rotated by size (audit_max_bytes, keeping
    audit_keep files), every line valid UTF-8 JSON, and not open in the
    collectors it starts (close-on-exec)."""
    from test_daemoneye import Agent, wait_for
    a = Agent("embedded", pb, agent_extra="  audit_max_bytes: 4096\n  audit_keep: 2\n")
    with a:
        wait_for(lambda: os.path.exists(a.audit + ".2"), timeout=30, what="two rotations")
        a.ctl = connect(a.sock, "admin.test2")  # the first went idle meanwhile
        pid = a.status("p1").pid
        fds = [os.readlink(f"/proc/{pid}/fd/{x}") for x in os.listdir(f"/proc/{pid}/fd")]
        # the agent's trail is not open there (procmond has its own)
        assert not [x for x in fds if x.startswith(a.audit)], fds
        assert [x for x in fds if x.endswith("collector.process.p1.audit.jsonl")], fds
    assert not os.path.exists(a.audit + ".3")
    for path in (a.audit, a.audit + ".1", a.audit + ".2"):
        data = open(path, "rb").read()
        assert len(data) < 4096 + 1024, (path, len(data))
        for line in data.decode("utf-8").splitlines():
            json.loads(line)
