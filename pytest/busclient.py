# SPDX-License-Identifier: Apache-2.0
"""A byte-exact BUS/RT test client and a busrtd fixture for the tests.

Frames are built and parsed here by hand, from PROTOCOL.md, so that the
tests check the broker's bytes, not a library's interpretation of them.
"""
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time

import msgpack

OP_PUBLISH, OP_SUBSCRIBE, OP_UNSUBSCRIBE = 0x01, 0x02, 0x03
OP_EXCLUDE, OP_UNEXCLUDE, OP_PUBLISH_FOR = 0x04, 0x05, 0x06
OP_MESSAGE, OP_BROADCAST, OP_ACK, OP_NOP = 0x12, 0x13, 0xFE, 0x00
OK, NOT_REGISTERED, DATA, NOT_SUPPORTED = 0x01, 0x71, 0x72, 0x75
BUSY, NOT_DELIVERED, TIMEOUT, ACCESS = 0x76, 0x77, 0x78, 0x79

BIN = os.environ.get("BUSRT_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
BUSRTD = os.path.join(BIN, "busrtd")


def frame(op, payload=b"", qos=0, op_id=1):
    return struct.pack("<IBI", op_id, op | (qos << 6), len(payload)) + payload


PING = b"\x00" * 9


class Closed(Exception):
    pass


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Client:
    def __init__(self, address, timeout=3.0, tls=None):
        """address: a Unix socket path or (host, port); tls: an
        ssl.SSLContext to speak TLS over TCP with."""
        if isinstance(address, tuple):
            self.sock = socket.create_connection(address, timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                self.sock = tls.wrap_socket(self.sock, server_hostname=address[0])
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.buf = b""
        self.pending = []
        self.op_id = 0
        self.call_id = 0

    # -- raw I/O ------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def read_exact(self, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(f"closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def is_closed(self, timeout=3.0):
        """True once the broker closes the connection (pending frames skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False

    def close(self):
        self.sock.close()

    # -- handshake ------------------------------------------------------------
    def handshake(self, name):
        greeting = self.read_exact(3)
        assert greeting == b"\xeb\x01\x00", greeting
        self.send(greeting)
        assert self.read_exact(1) == bytes([OK])
        raw = name.encode() if isinstance(name, str) else name
        self.send(struct.pack("<H", len(raw)) + raw)
        return self.read_exact(1)[0]

    # -- frames ---------------------------------------------------------------
    def next_id(self):
        self.op_id += 1
        return self.op_id

    def op(self, op, payload, qos=1):
        op_id = self.next_id()
        self.send(frame(op, payload, qos, op_id))
        if qos & 1:
            return self.ack(op_id)
        return None

    def ack(self, op_id, timeout=3.0):
        """Waits for the ACK of op_id; frames delivered meanwhile are kept
        for read_frame, in order."""
        while True:
            f = self._read_frame(timeout, True)
            if f[0] == "ack":
                assert f[1] == op_id, f
                return f[2]
            self.pending.append(f)

    def subscribe(self, *masks, qos=1):
        return self.op(OP_SUBSCRIBE, b"\x00".join(m.encode() for m in masks), qos)

    def unsubscribe(self, *masks, qos=1):
        return self.op(OP_UNSUBSCRIBE, b"\x00".join(m.encode() for m in masks), qos)

    def exclude(self, *masks, qos=1):
        return self.op(OP_EXCLUDE, b"\x00".join(m.encode() for m in masks), qos)

    def unexclude(self, *masks, qos=1):
        return self.op(OP_UNEXCLUDE, b"\x00".join(m.encode() for m in masks), qos)

    def publish(self, topic, data, qos=1):
        return self.op(OP_PUBLISH, topic.encode() + b"\x00" + data, qos)

    def publish_for(self, topic, receiver, data, qos=1):
        return self.op(OP_PUBLISH_FOR, topic.encode() + b"\x00" + receiver.encode() + b"\x00" + data, qos)

    def message(self, target, data, qos=1):
        return self.op(OP_MESSAGE, target.encode() + b"\x00" + data, qos)

    def broadcast(self, mask, data, qos=1):
        return self.op(OP_BROADCAST, mask.encode() + b"\x00" + data, qos)

    def read_frame(self, timeout=3.0, skip_nop=True):
        """Returns ("ack", op_id, code) or (kind, sender, topic, data, realtime)."""
        if self.pending:
            return self.pending.pop(0)
        return self._read_frame(timeout, skip_nop)

    def _read_frame(self, timeout, skip_nop):
        while True:
            head = self.read_exact(6, timeout)
            kind = head[0]
            if kind == OP_ACK:
                return ("ack", struct.unpack("<I", head[1:5])[0], head[5])
            (length,) = struct.unpack("<I", head[1:5])
            rest = self.read_exact(length, timeout) if length else b""
            if kind == OP_NOP:
                assert length == 0
                if skip_nop:
                    continue
                return ("nop", None, None, b"", head[5])
            sender, _, rest = rest.partition(b"\x00")
            topic = None
            if kind == OP_PUBLISH:
                topic, _, rest = rest.partition(b"\x00")
                topic = topic.decode()
            names = {OP_PUBLISH: "publish", OP_MESSAGE: "message", OP_BROADCAST: "broadcast"}
            return (names[kind], sender.decode(), topic, rest, head[5])

    def expect_nothing(self, timeout=0.3):
        assert not self.pending, self.pending
        try:
            f = self.read_frame(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {f}")

    # -- RPC to .broker -------------------------------------------------------
    def rpc(self, method, params=b"", target=".broker", timeout=3.0):
        """Calls method; returns ("reply", obj) or ("error", code, message)."""
        self.call_id += 1
        cid = self.call_id
        if not isinstance(params, bytes):
            params = msgpack.packb(params)
        data = b"\x01" + struct.pack("<I", cid) + method.encode() + b"\x00" + params
        assert self.message(target, data, qos=1) == OK
        while True:
            f = self.read_frame(timeout)
            if f[0] != "message" or f[1] != target:
                continue
            body = f[3]
            assert struct.unpack("<I", body[1:5])[0] == cid
            if body[0] == 0x11:
                try:
                    obj = msgpack.unpackb(body[5:], raw=False) if body[5:] else None
                except ValueError:  # not MessagePack: the raw bytes are in [2]
                    obj = None
                return ("reply", obj, body[5:])
            assert body[0] == 0x12
            (code,) = struct.unpack("<h", body[5:7])
            return ("error", code, body[7:].decode())


def vm(pid, key):
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def events(pb, c, seconds):
    """Yields each BusrtEvent (pb: the generated module) c receives until
    seconds pass."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            f = c.read_frame(timeout=max(0.01, left))
        except TimeoutError:
            return
        if f[0] == "publish":
            yield pb.BusrtEvent.FromString(f[3])


def connect(address, name, timeout=3.0):
    c = Client(address, timeout)
    code = c.handshake(name)
    assert code == OK, f"registration of {name!r} answered {code:#x}"
    return c


# TCP peers have no credentials, so the default ACL refuses them; the
# tests that use TCP allow this machine's loopback address, and root
ALL_GRANTS = """      names: ["*"]
      publish: ["#"]
      subscribe: ["#"]
      send: ["*"]
      broadcast: ["*"]
"""
LOOPBACK_ACL = ("broker:\n  acl:\n    - who: {from: 127.0.0.1}\n" + ALL_GRANTS +
                "    - who: {uid: 0}\n" + ALL_GRANTS)


class Busrtd:
    """busrtd as a context manager: a short temp dir, a socket, SIGTERM at
    the end with the exit status checked. With tcp and no config, the
    ACL is LOOPBACK_ACL."""

    def __init__(self, *args, tcp=False, config=None, env=None, preexec=None,
                 busrtd=BUSRTD):
        self.dir = tempfile.mkdtemp(prefix="bt", dir="/tmp")
        self.path = os.path.join(self.dir, "b.sock")
        self.args = list(args)
        self.tcp_port = None
        self.config = LOOPBACK_ACL if tcp and config is None else config
        self.env = env
        self.tcp = tcp
        self.preexec = preexec  # run in the child before exec (limits)
        self.busrtd = busrtd  # another build's (an installed one)

    def __enter__(self):
        argv = [self.busrtd, "-B", self.path]
        if self.tcp:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.tcp_port = s.getsockname()[1]
            s.close()
            argv += ["-B", f"127.0.0.1:{self.tcp_port}"]
        if self.config is not None:
            cfg = os.path.join(self.dir, "broker.yaml")
            with open(cfg, "w") as f:
                f.write(self.config)
            argv += ["--config", cfg]
        argv += self.args
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(argv, stderr=self.stderr, env=self.env,
                                     preexec_fn=self.preexec)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"busrtd exited {self.proc.returncode}: {self.log()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.path)
                s.close()
                # every -B listening (they are bound in turn, the Unix
                # socket first: it answers before the others exist)
                if (not self.tcp or self._tcp_ready()) and \
                        self.log().count("listening on ") >= argv.count("-B"):
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("busrtd did not start")

    def _tcp_ready(self):
        try:
            socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("busrtd did not stop on SIGTERM")
        self.stderr.close()
        return rc

    def __exit__(self, et, ev, tb):
        rc = self.stop()
        log = open(self.stderr_path).read()
        if et is None:
            assert rc == 0, f"busrtd exited {rc}: {log}"
            assert "ERROR: AddressSanitizer" not in log, log
            assert "runtime error" not in log, log
            assert not os.path.exists(self.path), "socket file left behind"
        for name in os.listdir(self.dir):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        os.rmdir(self.dir)

    def client(self, name, tcp=False):
        addr = ("127.0.0.1", self.tcp_port) if tcp else self.path
        return connect(addr, name)

    def raw(self, tcp=False):
        return Client(("127.0.0.1", self.tcp_port) if tcp else self.path)
