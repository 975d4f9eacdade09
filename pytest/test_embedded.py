# SPDX-License-Identifier: Apache-2.0
"""The embedded broker (busrt-demo): one process hosting the broker with
internal clients, serving socket clients at the same time."""
import os
import signal
import subprocess
import tempfile
import time

import msgpack

from busclient import BIN, OK, connect

DEMO = os.path.join(BIN, "busrt-demo")
CLI = os.path.join(BIN, "busrt-cli")


class Demo:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="be", dir="/tmp")
        self.path = os.path.join(self.dir, "e.sock")
        self.args = args

    def __enter__(self):
        self.proc = subprocess.Popen([DEMO, "--socket", self.path, *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "busrt-demo did not start"
            time.sleep(0.02)
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        self.out, self.err = out.decode(), err.decode()
        return self.proc.returncode

    def __exit__(self, et, ev, tb):
        if self.proc.poll() is None:
            self.stop()
        for n in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, n))
        os.rmdir(self.dir)


def rpc_to(client, target, method, params=b""):
    return client.rpc(method, params, target=target)


def test_socket_and_internal_clients_together():
    with Demo("--seconds", "0", "--rate", "50") as d:
        c = connect(d.path, "py.socket")
        assert c.subscribe("events/#") == OK
        # internal publisher -> socket client
        f = c.read_frame(timeout=5)
        assert f[0] == "publish" and f[1] == "collector.process.demo"
        assert f[2] == "events/process/lifecycle" and f[3].startswith(b"seq=")
        # both internal clients are listed with kind "internal"
        clients = {x["name"]: x for x in c.rpc("client.list")[1]["clients"]}
        assert clients["collector.process.demo"]["kind"] == "internal"
        assert clients["demo.subscriber"]["kind"] == "internal"
        assert clients["py.socket"]["kind"] == "local_ipc"
        # socket client -> internal subscriber (publish) and RPC into it
        before = int(rpc_to(c, "demo.subscriber", "count")[2])
        for i in range(5):
            assert c.publish("demo/socket", b"from py %d" % i) == OK
        # the default ACL: a tool may not forge events
        assert c.publish("events/socket", b"forged") == 0x79
        assert rpc_to(c, "demo.subscriber", "echo", b"ping")[2] == b"ping"
        after = int(rpc_to(c, "demo.subscriber", "count")[2])
        assert after >= before + 5
        assert rpc_to(c, "demo.subscriber", "nope")[:2] == ("error", -32601)
        # a C socket client works against the embedded broker too
        p = subprocess.run([CLI, "-s", d.path, "rpc", "call", "demo.subscriber", "echo",
                            "--raw", "c-client"], capture_output=True, timeout=10)
        assert p.returncode == 0 and p.stdout == b"c-client\n", p.stderr
        rc = d.stop()
        assert rc == 0, d.err
        assert "AddressSanitizer" not in d.err and "runtime error" not in d.err
        assert "[internal demo.subscriber] demo/socket py.socket: from py 4" in d.out
        assert "forged" not in d.out
        assert not os.path.exists(d.path)
        # the socket client saw the shutdown announcement
        warn = None
        while True:
            try:
                f = c.read_frame(timeout=2)
            except Exception:
                break
            if f[0] == "publish" and f[2] == ".broker/warn":
                warn = msgpack.unpackb(f[3])
        assert warn and warn["s"] == "shutdown"


def test_demo_with_cli_listener_exits_zero():
    with Demo("--seconds", "1", "--cli", CLI) as d:
        rc = d.proc.wait(timeout=20)
        d.stop()
        assert rc == 0, d.err
        assert "[busrt-cli listen, over the socket]" in d.out
        assert "[internal demo.subscriber] events/process/lifecycle" in d.out


def test_demo_bad_arguments():
    p = subprocess.run([DEMO, "--rate", "0"], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"--rate" in p.stderr
    p = subprocess.run([DEMO, "--config", "/nonexistent.yaml"], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"/nonexistent.yaml" in p.stderr
