# SPDX-License-Identifier: Apache-2.0
"""busrt-cli (the C client library in a CLI) against busrtd: every command,
bad arguments, an unreachable broker, and interoperability with the
byte-exact Python test client in both directions."""
import json
import os
import re
import struct
import subprocess
import threading
import time

import msgpack
import pytest

from busclient import BIN, OK

CLI = os.path.join(BIN, "busrt-cli")


def cli(*args, input=None, timeout=15):
    p = subprocess.run([CLI, *args], input=input, capture_output=True, timeout=timeout)
    assert b"AddressSanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def listener(path, *args):
    """Starts busrt-cli listen and waits until it has subscribed."""
    p = subprocess.Popen([CLI, "-s", path, "listen", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stderr.readline()
    assert b"listening" in line, line
    return p


def finish(p, timeout=10):
    out, err = p.communicate(timeout=timeout)
    assert b"AddressSanitizer" not in err and b"runtime error" not in err, err
    return p.returncode, out.decode(), err.decode()


LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (\S+) (\S+) (\S+) (.*)$")


def test_publish_reaches_python_subscriber(broker, tmp_path):
    sub = broker.client("py.sub")
    assert sub.subscribe("ev/#") == OK
    f = tmp_path / "d.bin"
    f.write_bytes(b"\x00\xfffile")
    assert cli("-s", broker.path, "-n", "c.pub", "publish", "ev/lit", "hello")[0] == 0
    assert cli("-s", broker.path, "publish", "ev/file", f"@{f}")[0] == 0
    assert cli("-s", broker.path, "publish", "ev/stdin", "-", input=b"from stdin")[0] == 0
    for qos in "0123":
        assert cli("-s", broker.path, "--qos", qos, "publish", "ev/q", qos)[0] == 0
    got = [sub.read_frame() for _ in range(7)]
    assert got[0][:4] == ("publish", "c.pub", "ev/lit", b"hello")
    assert got[1][2:4] == ("ev/file", b"\x00\xfffile")
    assert got[2][2:4] == ("ev/stdin", b"from stdin")
    assert [g[3] for g in got[3:]] == [b"0", b"1", b"2", b"3"]
    assert [g[4] for g in got[3:]] == [0, 0, 1, 1]  # realtime flag from QoS 2/3


def test_send_and_broadcast(broker):
    a = broker.client("collector.proc")
    b = broker.client("collector.net.1")
    assert cli("-s", broker.path, "-n", "c1", "send", "collector.proc", "direct")[0] == 0
    assert a.read_frame()[:4] == ("message", "c1", None, b"direct")
    assert cli("-s", broker.path, "-n", "c2", "broadcast", "collector.*", "all")[0] == 0
    assert a.read_frame()[:4] == ("broadcast", "c2", None, b"all")
    assert b.read_frame()[:4] == ("broadcast", "c2", None, b"all")
    rc, out, err = cli("-s", broker.path, "send", "nobody", "x")
    assert rc == 1 and "nobody: client not registered" in err


def test_listen_lines_and_json(broker):
    p = listener(broker.path, "ev/#", "--count", "4")
    pub = broker.client("py.pub")
    pub.publish("ev/a", b"text payload")
    pub.publish("ev/b", b"\x00\x01\xfe")
    pub.publish("other", b"not for it")
    name = [c["name"] for c in pub.rpc("client.list")[1]["clients"] if c["name"].startswith("busrt-cli")][0]
    pub.message(name, b"one-to-one")
    pub.broadcast("busrt-cli.*", b"to all")
    rc, out, err = finish(p)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    parsed = [LINE.match(l).groups() for l in lines]
    assert parsed[0] == ("publish", "py.pub", "ev/a", "text payload")
    assert parsed[1] == ("publish", "py.pub", "ev/b", "hex:0001fe")
    assert parsed[2] == ("message", "py.pub", "-", "one-to-one")
    assert parsed[3] == ("broadcast", "py.pub", "-", "to all")

    p = listener(broker.path, "--json", "--count", "2", "j/+")
    pub.publish("j/1", b"line\nbreak")
    pub.publish("j/2", b"\xff")
    rc, out, err = finish(p)
    assert rc == 0, err
    objs = [json.loads(l) for l in out.splitlines()]
    assert objs[0]["kind"] == "publish" and objs[0]["topic"] == "j/1"
    assert objs[0]["data"] == "line\nbreak" and objs[0]["sender"] == "py.pub"
    assert objs[1]["hex"] == "ff" and "data" not in objs[1]


def test_listen_stops_on_sigterm_and_seconds(broker):
    p = listener(broker.path, "#")
    p.terminate()
    assert finish(p)[0] == 0
    t0 = time.monotonic()
    rc, out, err = cli("-s", broker.path, "listen", "#", "--seconds", "0.3")
    assert rc == 0 and time.monotonic() - t0 < 5


def serve_rpc(client, answer, n=1):
    """Answers n RPC requests on a Python test client, in a thread."""
    seen = []

    def run():
        for _ in range(n):
            f = client.read_frame(timeout=10)
            body = f[3]
            assert f[0] == "message" and body[0] == 0x01
            (cid,) = struct.unpack("<I", body[1:5])
            method, _, params = body[5:].partition(b"\x00")
            seen.append((f[1], method.decode(), params))
            client.message(f[1], answer(cid, method.decode(), params), qos=0)

    t = threading.Thread(target=run)
    t.start()
    return t, seen


def test_rpc_call_interop(broker):
    srv = broker.client("py.server")

    def answer(cid, method, params):
        if method == "fail":
            return b"\x12" + struct.pack("<Ih", cid, -32602) + b"bad params"
        if method == "raw":
            return b"\x11" + struct.pack("<I", cid) + params
        return b"\x11" + struct.pack("<I", cid) + msgpack.packb({"method": method, "params": msgpack.unpackb(params)})

    t, seen = serve_rpc(srv, answer, n=3)
    rc, out, err = cli("-s", broker.path, "-n", "c.rpc", "rpc", "call", "py.server", "m1",
                       "i=42", "neg=-3", "f=1.5", "b=true", "s=text", "e=")
    assert rc == 0, err
    res = json.loads(out)
    assert res["method"] == "m1"
    assert res["params"] == {"i": 42, "neg": -3, "f": 1.5, "b": True, "s": "text", "e": ""}
    rc, out, err = cli("-s", broker.path, "rpc", "call", "py.server", "raw", "--raw", "\x01\x02")
    assert rc == 0, err
    assert out == "0102\n"  # binary result: hex
    rc, out, err = cli("-s", broker.path, "rpc", "call", "py.server", "fail")
    assert rc == 1 and "rpc error -32602: bad params" in err
    t.join(10)
    assert seen[0][0] == "c.rpc"
    assert seen[1][2] == b"\x01\x02"


def test_rpc_call_timeout_and_unknown_target(broker):
    keep = broker.client("py.silent")  # noqa: F841 (stays connected)
    rc, out, err = cli("-s", broker.path, "--timeout", "0.3", "rpc", "call", "py.silent", "m")
    assert rc == 1 and "timed out" in err and "-32120" in err
    rc, out, err = cli("-s", broker.path, "rpc", "call", "ghost", "m")
    assert rc == 1 and "client not registered" in err and "-32113" in err


def test_broker_commands(broker):
    rc, out, err = cli("-s", broker.path, "broker", "test")
    assert rc == 0 and json.loads(out) == {"ok": True}
    rc, out, err = cli("-s", broker.path, "broker", "info")
    assert rc == 0 and "version" in json.loads(out)
    rc, out, err = cli("-s", broker.path, "broker", "stats")
    st = json.loads(out)
    assert rc == 0 and st["r_frames"] >= 1 and "uptime" in st
    keep = broker.client("py.listed")  # noqa: F841
    rc, out, err = cli("-s", broker.path, "-n", "c.me", "broker", "clients")
    assert rc == 0
    rows = out.splitlines()
    assert rows[0].split()[:2] == ["name", "kind"]
    names = [r.split()[0] for r in rows[1:]]
    assert names == sorted(names) and "py.listed" in names and "c.me" in names
    rc, out, err = cli("-s", broker.path, "--json", "broker", "clients")
    assert {c["name"] for c in json.loads(out)["clients"]} >= {"py.listed"}


def test_tcp(tmp_path):
    from busclient import Busrtd
    with Busrtd(tcp=True) as b:
        sub = b.client("py.sub", tcp=True)
        sub.subscribe("t")
        rc, out, err = cli("-s", f"127.0.0.1:{b.tcp_port}", "publish", "t", "over tcp")
        assert rc == 0, err
        assert sub.read_frame()[3] == b"over tcp"


@pytest.mark.parametrize("args,msg", [
    ([], "missing COMMAND"),
    (["frob"], "unknown command 'frob'"),
    (["publish"], "publish: expected TARGET and DATA"),
    (["send", "a", "b", "c"], "send: expected TARGET and DATA"),
    (["rpc", "notify"], "rpc notify: expected TARGET [DATA]"),
    (["-t", "a/#", "publish", "t", "d"], "-t/--topics and --exclude go with listen"),
    (["--exclude", "a", "rpc", "listen"], "-t/--topics and --exclude go with listen"),
    (["--token", "x", "broker", "test"], "--token: this broker knows peers by"),
    (["--queue-size", "8", "broker", "test"], "--queue-size 8: BUS/RT's client queue"),
    (["--workers", "0", "benchmark"], "--workers: '0'"),
    (["-w", "4", "-i", "2", "benchmark"], "--iters must be at least --workers"),
    (["benchmark", "x"], "benchmark: unexpected 'x'"),
    (["--qos", "7", "publish", "t", "d"], "--qos: '7'"),
    (["--timeout", "x", "broker", "test"], "--timeout: 'x'"),
    (["rpc", "get", "a", "b"], "rpc: expected call|call0"),
    (["rpc", "call", "a", "m", "novalue"], "expected key=value"),
    (["broker", "frob"], "broker: 'frob'"),
    (["--count", "0", "listen", "#"], "--count: '0'"),
])
def test_bad_arguments(args, msg):
    rc, out, err = cli("-s", "/nonexistent/x.sock", *args)
    assert rc == 2, (rc, err)
    assert msg in err, err
    assert "usage: busrt-cli" in err or "key=value" in err


def test_missing_data_file():
    rc, out, err = cli("-s", "/nonexistent/x.sock", "publish", "t", "@/nonexistent/data")
    assert rc == 2 and "/nonexistent/data: No such file" in err


def test_unreachable_broker(tmp_path):
    rc, out, err = cli("-s", str(tmp_path / "none.sock"), "broker", "test")
    assert rc == 1 and "connect" in err and "none.sock" in err and "no such file" in err
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, out, err = cli("-s", f"127.0.0.1:{port}", "broker", "test")
    assert rc == 1 and f"127.0.0.1:{port}" in err and "refused" in err


def test_busy_name(broker):
    keep = broker.client("taken")  # noqa: F841
    rc, out, err = cli("-s", broker.path, "-n", "taken", "broker", "test")
    assert rc == 1 and "refused the name" in err and "already registered" in err


def test_listen_reconnects_and_resubscribes_after_broker_restart():
    """The libuv client host's reconnect path: busrtd stops and starts
    again on the same socket; the listener re-subscribes by itself."""
    from busclient import Busrtd
    b1 = Busrtd()
    b1.__enter__()
    path = b1.path
    # 3 frames: before, the broker's .broker/warn shutdown notice, after
    p = listener(path, "--reconnect", "--count", "3", "r/#")
    pub = b1.client("pub")
    pub.publish("r/1", b"before")
    pub.close()
    assert b1.stop() == 0
    assert b"disconnected" in p.stderr.readline()
    # a new broker on the same path (same temp dir, so the same socket)
    b2 = Busrtd()
    b2.dir, b2.path = b1.dir, path
    b2.__enter__()
    try:
        assert b"reconnected" in p.stderr.readline()
        pub = b2.client("pub")
        pub.publish("r/2", b"after")
        rc, out, err = finish(p)
        assert rc == 0, err
        frames = [LINE.match(l).groups() for l in out.splitlines()]
        assert [f[3] for f in frames][::2] == ["before", "after"]
        assert frames[1][:3] == ("publish", ".broker", ".broker/warn")
    finally:
        b2.__exit__(None, None, None)


def test_listen_escapes_peer_names_and_topics(broker):
    """A client name or topic with ESC sequences and newlines once reached
    the terminal raw and forged output lines; text output escapes every
    control character (the JSON output escapes them its own way)."""
    p = listener(broker.path, "t/#", "plain", "--count", "2")
    evil = broker.client("evil\x1b[2J\nFAKE 2026 publish root x ok")
    evil.publish("t/\x1b]0;owned\x07/\u0085x\\y", b"data")
    evil.publish("plain", b"\x1b[31mred")  # data that is not printable: hex
    rc, out, err = finish(p)
    assert rc == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u0085" not in out
    lines = out.splitlines()
    assert len(lines) == 2, lines
    assert "evil\\x1b[2J\\x0aFAKE 2026 publish root x ok" in lines[0]
    assert "t/\\x1b]0;owned\\x07/\\xc2\\x85x\\\\y data" in lines[0]
    assert lines[1].endswith("plain hex:1b5b33316d726564")


# ---- BUS/RT's CLI: the rest of its commands and habits ---------------------
def test_address_first_and_data_from_stdin(broker):
    """busrt-cli PATH COMMAND, as BUS/RT's; DATA missing: stdin."""
    sub = broker.client("py.sub2")
    assert sub.subscribe("st/#") == OK
    assert cli(broker.path, "publish", "st/a", input=b"piped")[0] == 0
    assert sub.read_frame()[2:4] == ("st/a", b"piped")
    rc, out, err = cli(broker.path, "send", "py.sub2", input=b"direct in")
    assert rc == 0, err
    assert sub.read_frame()[:4][3] == b"direct in"
    # a send to a wildcard target is a broadcast (BUS/RT's send)
    assert cli(broker.path, "-n", "bc", "send", "py.*", "to all")[0] == 0
    assert sub.read_frame()[:4] == ("broadcast", "bc", None, b"to all")
    rc, out, err = cli("-s", broker.path, broker.path, "broker", "test")
    assert rc == 2 and "an address after -s" in err, err


def test_listen_topics_exclude_and_messages_only(broker):
    p = subprocess.Popen([CLI, broker.path, "listen", "-t", "a/#", "--topics", "b/x",
                          "--exclude", "a/secret/#", "--count", "3", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b"listening" in p.stderr.readline()
    pub = broker.client("py.pub2")
    pub.publish("a/secret/k", b"hidden")
    pub.publish("a/open", b"seen")
    pub.publish("c", b"not subscribed")
    # MessagePack (BUS/RT's payloads, the broker's notices) as JSON
    pub.publish("b/x", msgpack.packb({"level": "warn", "n": 3}))
    assert pub.message(f"busrt-cli.{p.pid}", b"direct") == OK
    rc, out, err = finish(p)
    assert rc == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["kind"], r.get("topic")) for r in rows] == [
        ("publish", "a/open"), ("publish", "b/x"), ("message", None)], rows
    assert rows[0]["data"] == "seen"
    assert rows[1]["msgpack"] == {"level": "warn", "n": 3}, rows[1]
    assert rows[2]["data"] == "direct"
    # no masks at all: messages and broadcasts only; text lines decode too
    p = listener(broker.path, "--count", "1")
    pub.publish("a/open", b"not for it")
    assert pub.message(f"busrt-cli.{p.pid}", msgpack.packb([1, "two"])) == OK
    rc, out, err = finish(p)
    assert rc == 0, err
    assert LINE.match(out.strip()).group(4) == '[1, "two"]', out


def test_rpc_listen_call_call0_and_notify(broker):
    p = subprocess.Popen([CLI, broker.path, "-n", "rl.1", "rpc", "listen", "--count", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b"listening" in p.stderr.readline()
    rc, out, err = cli(broker.path, "-n", "caller", "rpc", "call", "rl.1", "ping", "a=1",
                       "b=x")
    assert rc == 0 and out == "\n", (rc, out, err)  # answered, empty
    rc, out, err = cli(broker.path, "-n", "caller", "rpc", "call0", "rl.1", "fire", "n=2")
    assert rc == 0 and out == "", (out, err)
    rc, out, err = cli(broker.path, "-n", "caller", "rpc", "notify", "rl.1",
                       input=b"note from stdin")
    assert rc == 0, err
    rc, out, err = finish(p)
    assert rc == 0, err
    lines = [LINE.match(x).groups() for x in out.splitlines()]
    assert lines == [("rpc.call", "caller", "ping", '{"a": 1, "b": "x"}'),
                     ("rpc.call0", "caller", "fire", '{"n": 2}'),
                     ("rpc.notification", "caller", "-", "note from stdin")], lines
    # a Python client's call0 gets no answer; its call gets one
    py = broker.client("py.rpc")
    p = subprocess.Popen([CLI, broker.path, "-n", "rl.2", "rpc", "listen", "--count", "2",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b"listening" in p.stderr.readline()
    assert py.rpc("m", b"", target="rl.2")[0] == "reply"
    rc, out, err = cli(broker.path, "rpc", "call0", "nobody.here", "m")
    assert rc == 1 and "nobody.here: client not registered" in err, err
    rc, out, err = cli(broker.path, "--qos", "0", "rpc", "call0", "rl.2", "m")
    assert rc == 0, err
    rc, out, err = finish(p)
    assert rc == 0
    assert [json.loads(x)["kind"] for x in out.splitlines()] == ["rpc.call", "rpc.call0"]
    py.expect_nothing()


def test_broker_client_list_is_clients(broker):
    keep = broker.client("listed.one")  # noqa: F841
    rc, out, err = cli(broker.path, "broker", "client.list")
    assert rc == 0 and out.split("\n")[0].split()[:2] == ["name", "kind"], out
    assert "listed.one" in out


def test_benchmark(broker):
    rc, out, err = cli(broker.path, "benchmark", "-w", "2", "-i", "2000",
                       "--payload-size", "16", timeout=60)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "benchmark: 2 worker(s), 2000 iters, 1000 iters/worker, 16 byte(s) payload"
    stages = [x.split() for x in lines[2:]]
    assert [s[0] for s in stages] == [
        "rpc.call", "rpc.call+handle", "rpc.call0", "send.qos.no", "send.qos.processed",
        "send+recv.qos.no", "send+recv.qos.processed"], lines
    assert all(s[1] == "2000" and float(s[3]) > 0 for s in stages), lines
    rc, out, err = cli(broker.path, "--json", "benchmark", "-i", "300", timeout=60)
    assert rc == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[0]["info"].startswith("benchmark: 1 worker(s), 300 iters")
    assert len(rows) == 8 and all(r["iters"] == 300 and r["iters_per_s"] > 0
                                  for r in rows[1:]), rows
    # the broker saw it all: every worker gone, nothing left queued
    st = msgpack.unpackb(broker.client("py.st").rpc("client.list")[2])
    assert [c["name"] for c in st["clients"] if c["name"].startswith("busrt-cli")] == []


def test_silent_verbose_and_buf_size(broker):
    p = subprocess.Popen([CLI, broker.path, "--silent", "listen", "s/#", "--count", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    pub = broker.client("py.pub3")
    while p.poll() is None and time.monotonic() < deadline:
        pub.publish("s/x", b"quiet")  # until the subscription is in
        time.sleep(0.05)
    rc, out, err = finish(p)
    assert rc == 0 and err == "" and "quiet" in out, (rc, out, err)
    rc, out, err = cli("-v", "--buf-size", "4096", broker.path, "-n", "vv", "broker", "test")
    assert rc == 0 and f"connecting to {broker.path} as vv" in err, err


def test_json_says_what_json_cannot_hold(broker):
    """--json lines are whole jansson objects: a uint64 past int64 as its
    exact decimal string, NaN as "NaN", bin and ext as hex, a map key that
    is not a string as its JSON text, text that is not UTF-8 as \\xNN."""
    p = listener(broker.path, "--json", "--count", "3", "w/+")
    pub = broker.client("py.wide")
    pub.publish("w/1", msgpack.packb({"big": 2**64 - 1, "neg": -2**63, "nan": float("nan"),
                                      "bin": b"\x00\xff", 7: "int key",
                                      "ext": msgpack.ExtType(5, b"\x01")}))
    pub.publish("w/2", b"\x81\xa1s\xa2\xff\xfe")  # {"s": a str that is not UTF-8}
    pub.publish("w/3", msgpack.packb({"a\x00b": 1, "x": 1, "x ": 2}))
    rc, out, err = finish(p)
    assert rc == 0, err
    a, b, c = [json.loads(x)["msgpack"] for x in out.splitlines()]
    assert c == {"a\x00b": 1, "x": 1, "x ": 2}, c  # a NUL inside a key is kept
    assert a == {"big": "18446744073709551615", "neg": -2**63, "nan": "NaN", "bin": "00ff",
                 "7": "int key", "ext": {"ext_type": 5, "hex": "01"}}, a
    assert b == {"s": "\\xff\\xfe"}, b


def test_proto_json_agrees_with_protobuf(broker, pb):
    """listen --proto --json prints a DaemonEye event as Python's protobuf
    decodes it: every field protobuf's own JSON mapping gives, with the
    same value (64-bit numbers as numbers, past int64 as the decimal
    string; bytes as hex where protobuf gives base64)."""
    import base64
    from google.protobuf import json_format
    ev = pb.BusrtEvent(event_id="e-1", timestamp_ms=-5, source_collector="collector.process.p1",
                       topic="events/process/lifecycle", schema_version=1,
                       incarnation=2**64 - 1, sequence=2**63 - 1)
    ev.process_event.event_type = pb.ProcessEvent.TERMINATION
    r = ev.process_event.process
    r.pid = 4242
    r.cpu_usage = 12.5
    r.memory_usage = 2**40
    r.command_line.extend(["sleep", "5"])
    r.name_raw = b"\xff\x00"
    p = listener(broker.path, "--proto", "--json", "--count", "1", "events/#")
    pub = broker.client("collector.process.pt")
    pub.publish("events/process/lifecycle", ev.SerializeToString())
    rc, out, err = finish(p)
    assert rc == 0, err
    line = json.loads(out)
    assert line["kind"] == "publish" and line["sender"] == "collector.process.pt"
    ours = line["event"]
    assert ours["incarnation"] == "18446744073709551615" and ours["sequence"] == 2**63 - 1
    assert "network_event" not in ours  # the oneof: only the one set

    theirs = json_format.MessageToDict(ev, preserving_proto_field_name=True)
    theirs["process_event"]["process"]["name_raw"] = base64.b64decode(
        theirs["process_event"]["process"]["name_raw"]).hex()

    def same(t, o, path):
        if isinstance(t, dict):
            assert isinstance(o, dict), path
            for k, v in t.items():
                assert k in o, f"{path}.{k} missing"
                same(v, o[k], f"{path}.{k}")
        elif isinstance(t, list):
            assert len(t) == len(o), path
            for i, (x, y) in enumerate(zip(t, o)):
                same(x, y, f"{path}[{i}]")
        elif isinstance(t, str) and t.lstrip("-").isdigit() and not isinstance(o, str):
            assert int(t) == o, path  # protobuf writes 64-bit numbers as strings
        else:
            assert t == o, (path, t, o)
    same(theirs, ours, "event")
