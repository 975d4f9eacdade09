# SPDX-License-Identifier: Apache-2.0
"""TLS for TCP: busrtd's listener (OpenSSL through memory BIOs), our
client's tls://HOST:PORT (busrt-cli, procmond), client certificates whose
CN is the peer's identity in the ACL, and openssl s_client as a second,
independent client. A throwaway CA and certificates come from the openssl
command, made for this run."""
import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from busclient import ACCESS, ALL_GRANTS, BIN, OK, Busrtd, Client, Closed, free_port

CLI = os.path.join(BIN, "busrt-cli")
PROCMOND = os.path.join(BIN, "procmond")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", cwd=d)


def make_cert(d, ca, name, cn, san=None):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
            f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2"]
    if san:
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        args += ["-extfile", f"{name}.ext"]
    openssl(*args, cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_cert(d, "ca", "srv", "broker", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "rogue-ca", "rogue-srv", "broker", san="IP:127.0.0.1")
    make_cert(d, "ca", "col", "collector-host-1")
    make_cert(d, "ca", "mon", "monitor-host")
    make_cert(d, "rogue-ca", "rogue-col", "collector-host-1")
    return lambda name: os.path.join(d, name)


def tls_config(pki, port, verify_client=True, srv="srv", acl=None):
    cfg = ("broker:\n  standalone:\n"
           f"    address: 127.0.0.1:{port}\n"
           f"    tls: {{enabled: true, cert_file: {pki(srv + '.pem')}, "
           f"key_file: {pki(srv + '.key')}, ca_file: {pki('ca.pem')}, "
           f"verify_client: {'true' if verify_client else 'false'}}}\n")
    if acl:
        cfg += acl
    return cfg


# who may register what over TLS: by certificate CN, the CA verified
CN_ACL = """  acl:
    - who: {cn: collector-host-1}
      names: [collector.*]
      publish: ['events/{1}/#']
      send: ['*']
    - who: {cn: monitor-host}
      names: [monitor.*]
      subscribe: [events/+/anomaly]
    - who: {uid: 0}
      names: ['*']
      publish: ['#']
      subscribe: ['#']
      send: ['*']
"""


class TlsBroker(Busrtd):
    """busrtd listening on its Unix socket and on TLS at self.port."""

    def __init__(self, pki, **kw):
        self.port = free_port()
        super().__init__("-B", f"127.0.0.1:{self.port}",
                         config=tls_config(pki, self.port, **kw))

    def __enter__(self):
        super().__enter__()  # the Unix socket answers; the TLS port is
        deadline = time.monotonic() + 10  # bound after it (no probe: a
        while time.monotonic() < deadline:  # probe would count)
            if open(self.stderr_path).read().count("busrtd: listening on") >= 2:
                return self
            time.sleep(0.02)
        raise RuntimeError("busrtd did not listen on its TLS port")


def ctx(pki, cert=None, ca="ca.pem"):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(pki(ca))
    if cert:
        c.load_cert_chain(pki(cert + ".pem"), pki(cert + ".key"))
    return c


def cli(*args, timeout=20):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


def _stats(b):
    c = Client(b.path)
    c.handshake("test.stats")
    st = c.rpc("stats")[1]
    c.sock.close()
    return st


def test_tls_clients_and_the_cn_as_identity(pki):
    with TlsBroker(pki, acl=CN_ACL) as b:
        # our client: the broker verified against the CA, our certificate
        # verified by the broker; its CN decides what it may register
        r = cli("-s", f"tls://127.0.0.1:{b.port}", "--tls-ca", pki("ca.pem"),
                "--tls-cert", pki("col.pem"), "--tls-key", pki("col.key"),
                "-n", "collector.process.h1", "publish", "events/process/x", "hi")
        assert r.returncode == 0, r.stderr
        r = cli("-s", f"tls://127.0.0.1:{b.port}", "--tls-ca", pki("ca.pem"),
                "--tls-cert", pki("mon.pem"), "--tls-key", pki("mon.key"),
                "-n", "collector.process.h1", "publish", "events/process/x", "hi")
        assert r.returncode != 0 and "refused the name" in r.stderr, r.stderr
        # Python's ssl as another client: the same boundaries
        c = Client(("127.0.0.1", b.port), tls=ctx(pki, "col"))
        assert c.handshake("collector.process.h2") == OK
        assert c.publish("events/process/lifecycle", b"x") == OK
        assert c.publish("events/network/lifecycle", b"x") == ACCESS
        listed = Client(b.path)
        listed.handshake("test.list")
        rows = {x["name"]: x for x in listed.rpc("client.list")[1]["clients"]}
        assert rows["collector.process.h2"]["cn"] == "collector-host-1"
        assert rows["collector.process.h2"]["rule"].endswith("broker.yaml:6"), rows
        m = Client(("127.0.0.1", b.port), tls=ctx(pki, "mon"))
        assert m.handshake("monitor.m1") == OK
        assert m.subscribe("events/#") == ACCESS
        # no client certificate, or one of another CA: the handshake fails
        for cert in (None, "rogue-col"):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError, Closed)):
                x = Client(("127.0.0.1", b.port), tls=ctx(pki, cert))
                x.handshake("collector.process.h3")
        time.sleep(0.3)
        st = listed.rpc("stats")[1]
        assert st["tls_handshakes"] >= 4 and st["tls_failures"] >= 2, st
        c.sock.close()
        m.sock.close()
        listed.sock.close()


def test_plaintext_to_the_tls_port_is_closed_and_counted(pki):
    with TlsBroker(pki, verify_client=False) as b:
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(b"\x00" * 9)  # a BUS/RT ping header: not a TLS record
        t0 = time.monotonic()
        try:  # closed, not left hanging (a reset if it closed before
            got = s.recv(100)  # reading all we sent)
        except ConnectionResetError:
            got = b""
        assert got == b""
        assert time.monotonic() - t0 < 2
        s.close()
        # a BUS/RT client over plain TCP waits for the greeting: it gets
        # a close after the handshake timeout, never a greeting
        r = cli("-s", f"127.0.0.1:{b.port}", "--timeout", "10", "broker", "test")
        assert r.returncode != 0
        st = _stats(b)
        assert st["tls_plaintext"] == 1 and st["tls_failures"] == 1, st
        log = open(b.stderr_path).read()
    assert "not TLS (plaintext to a TLS port?)" in log, log


def test_openssl_s_client_is_answered_with_the_greeting(pki):
    """openssl s_client, an independent TLS implementation of the client
    side: the handshake verifies against our CA and the broker's first
    BUS/RT bytes (0xEB, version 1) come through."""
    with TlsBroker(pki) as b:
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{b.port}",
                              "-CAfile", pki("ca.pem"), "-cert", pki("col.pem"),
                              "-key", pki("col.key"), "-verify_return_error",
                              "-quiet"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        got = p.stdout.read(3)
        p.stdin.write(b"\x01\x00")  # protocol version 1 back
        p.stdin.flush()
        p.kill()
        p.communicate(timeout=10)
        assert got == b"\xeb\x01\x00", got


def test_our_client_refuses_a_broker_it_cannot_verify(pki):
    with TlsBroker(pki, verify_client=False, srv="rogue-srv", acl="  acl: open\n") as b:
        r = cli("-s", f"tls://127.0.0.1:{b.port}", "--tls-ca", pki("ca.pem"),
                "broker", "test")
        assert r.returncode != 0
        assert "certificate" in r.stderr, r.stderr
        # the same broker, verified against the CA that signed it: fine
        r = cli("-s", f"tls://127.0.0.1:{b.port}", "--tls-ca", pki("rogue-ca.pem"),
                "broker", "test")
        assert r.returncode == 0, r.stderr
    # a certificate that does not name the address dialled is refused
    with TlsBroker(pki, verify_client=False, srv="col", acl="  acl: open\n") as b:
        r = cli("-s", f"tls://127.0.0.1:{b.port}", "--tls-ca", pki("ca.pem"),
                "broker", "test")
        assert r.returncode != 0 and "certificate" in r.stderr, r.stderr


def test_procmond_over_tls(pki, pb):
    with TlsBroker(pki, acl=CN_ACL) as b:
        p = subprocess.Popen([PROCMOND, "--connect", f"tls://127.0.0.1:{b.port}",
                              "--id", "t1", "--tls-ca", pki("ca.pem"),
                              "--tls-cert", pki("col.pem"), "--tls-key", pki("col.key"),
                              "--interval-ms", "100", "--cycles", "3"],
                             stderr=subprocess.PIPE, text=True)
        watch = Client(b.path)
        watch.handshake("test.watch")
        assert watch.subscribe("events/process/#") == 1
        err = p.communicate(timeout=30)[1]
        assert p.returncode == 0, err
        summary = json.loads(err.strip().splitlines()[-1].split("procmond: ", 1)[1])
        assert summary["events"] > 0 and summary["events_failed"] == 0, summary
        watch.sock.close()


def test_bad_tls_files_name_the_file(pki, tmp_path):
    port = free_port()
    cases = [
        (f"cert_file: {tmp_path}/none.pem, key_file: {pki('srv.key')}",
         f"cert_file {tmp_path}/none.pem: no such file or directory"),
        (f"cert_file: {pki('srv.pem')}, key_file: {pki('col.key')}",
         f"key_file {pki('col.key')}: unusable"),
        (f"cert_file: {pki('srv.pem')}, key_file: {pki('srv.key')}, verify_client: true",
         "verify_client needs ca_file"),
        (f"cert_file: {pki('srv.pem')}, key_file: {pki('srv.key')}, ca_file: {pki('srv.csr')}",
         f"ca_file {pki('srv.csr')}"),
    ]
    from busclient import BUSRTD
    for files, want in cases:
        cfg = tmp_path / "b.yaml"
        cfg.write_text("broker:\n  standalone:\n"
                       f"    address: 127.0.0.1:{port}\n"
                       f"    tls: {{enabled: true, {files}}}\n")
        r = subprocess.run([BUSRTD, "-B", str(tmp_path / "s.sock"), "--config", str(cfg)],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and want in r.stderr, (files, r.stderr)
    r = cli("-s", f"tls://127.0.0.1:{port}", "--tls-ca", str(tmp_path / "nope.pem"),
            "broker", "test")
    assert r.returncode == 2, r.stderr
    assert f"ca_file {tmp_path}/nope.pem: no such file or directory" in r.stderr, r.stderr
    r = subprocess.run([PROCMOND, "--connect", f"tls://127.0.0.1:{port}", "--id", "x",
                        "--tls-cert", pki("col.pem")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--tls-key" in r.stderr, r.stderr
    # tls:// without a configured certificate: busrtd says what is missing
    r = subprocess.run([BUSRTD, "-B", f"tls://127.0.0.1:{port}"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "TLS needs a certificate" in r.stderr, r.stderr


def test_agent_standalone_over_tls(pki, pb, tmp_path):
    """The agent in standalone mode over TCP with tls.enabled: it dials
    tls:// with ca_file and its client certificate, and passes them to the
    procmond it starts; both are known to busrtd by the certificate's CN."""
    make_cert(os.path.dirname(pki("ca.pem")), "ca", "agent", "agent-host")
    port = free_port()
    acl = ("  acl:\n    - who: {cn: agent-host}\n" + ALL_GRANTS + "    - who: {uid: 0}\n" +
           ALL_GRANTS)
    with Busrtd("-B", f"127.0.0.1:{port}", config=tls_config(pki, port, acl=acl)) as b:
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(
            "broker:\n  mode: standalone\n  standalone:\n"
            f"    address: 127.0.0.1:{port}\n"
            f"    tls: {{enabled: true, ca_file: {pki('ca.pem')}, "
            f"client_cert_file: {pki('agent.pem')}, client_key_file: {pki('agent.key')}}}\n"
            "agent:\n  audit_log: ''\n"
            "  heartbeat: {interval_ms: 200, timeout_ms: 150, retries: 1, dead_after: 3}\n"
            f"  collectors:\n    - id: p1\n      command: [{PROCMOND}]\n"
            "      scan_interval_ms: 100\n")
        agent = subprocess.Popen([os.path.join(BIN, "daemoneye-agent"), "--config", str(cfg)],
                                 stderr=subprocess.PIPE, text=True)
        try:
            c = Client(b.path)
            assert c.handshake("admin.tls") == OK
            deadline = time.monotonic() + 15
            state = None
            while time.monotonic() < deadline:
                try:
                    r = c.rpc("lifecycle.status",
                              pb.CollectorStatusRequest(collector_id="p1").SerializeToString(),
                              target="daemoneye-agent")
                except AssertionError:  # not registered yet
                    r = None
                if r and r[0] == "reply":
                    state = pb.CollectorStatusResponse.FromString(r[2]).collectors[0].state
                    if state == pb.CollectorStatus.RUNNING:
                        break
                time.sleep(0.1)
            assert state == pb.CollectorStatus.RUNNING
            rows = {x["name"]: x for x in c.rpc("client.list")[1]["clients"]}
            assert rows["daemoneye-agent"]["cn"] == "agent-host", rows
            assert rows["collector.process.p1"]["cn"] == "agent-host", rows
            assert rows["collector.process.p1"]["kind"] == "tcp"
            c.sock.close()
        finally:
            agent.terminate()
            err = agent.communicate(timeout=20)[1]
        assert agent.returncode == 0, err

