# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of every fuzz target into OUTDIR/<target>/:
real frames (built like the byte-exact test client builds them), the
shipped and documented configurations, and the inputs that must be proven
harmless (zero and 4 GiB lengths, one past each limit, invalid UTF-8, NULs
in names, masks like '#/a', '+#', '//', 10,000-level topics, YAML alias
bombs). At least 20 inputs per target.

  /usr/bin/python3 fuzz/seeds.py build/fuzz/seeds
"""
import os
import struct
import sys

import msgpack

OUT = sys.argv[1] if len(sys.argv) > 1 else "build/fuzz/seeds"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

PUBLISH, SUBSCRIBE, UNSUBSCRIBE, EXCLUDE, UNEXCLUDE, PUBLISH_FOR = 1, 2, 3, 4, 5, 6
MESSAGE, BROADCAST = 0x12, 0x13


def frame(op, payload=b"", qos=0, op_id=1, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IBI", op_id, op | (qos << 6), n) + payload


def rpc_req(method, params=b"", call_id=7):
    return b"\x01" + struct.pack("<I", call_id) + method.encode() + b"\x00" + params


def delivered(kind, sender, *parts, realtime=0):
    body = sender.encode() + b"\x00" + b"\x00".join(parts)
    return bytes([kind]) + struct.pack("<I", len(body)) + bytes([realtime]) + body


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- frame: seed byte + a client's stream -----------------------------------
frames = {
    "ping": b"\x00" * 9,
    "publish": frame(PUBLISH, b"events/process/lifecycle\x00data", 1),
    "publish-qos3": frame(PUBLISH, b"a/b\x00x", 3),
    "publish-empty": frame(PUBLISH, b"t\x00", 0),
    "subscribe": frame(SUBSCRIBE, b"events/#\x00events/*/anomaly\x00+/x", 1),
    "unsubscribe": frame(UNSUBSCRIBE, b"events/#", 1),
    "exclude": frame(EXCLUDE, b"events/secret", 1) + frame(UNEXCLUDE, b"events/secret", 1, 2),
    "publish-for": frame(PUBLISH_FOR, b"t\x00sub\x00d", 1),
    "message-broker": frame(MESSAGE, b".broker\x00" + rpc_req("test"), 1),
    "message-unknown": frame(MESSAGE, b"nobody\x00hi", 1),
    "broadcast": frame(BROADCAST, b"collector.*\x00all", 1),
    "unknown-op": frame(0x3f, b"x"),
    "ping-with-payload": struct.pack("<IBI", 0, 0, 3) + b"abc",
    "len-4gib": struct.pack("<IBI", 1, PUBLISH, 0xFFFFFFFF),
    "len-zero-publish": frame(PUBLISH, b"", 1),
    "len-past-limit": frame(PUBLISH, b"t\x00" + b"x" * 4095, 0),
    "missing-separator": frame(PUBLISH, b"no-separator", 1),
    "invalid-utf8-topic": frame(PUBLISH, b"\xff\xfe\x00d", 1),
    "nul-in-target": frame(MESSAGE, b"a\x00b\x00c", 1),
    "masks-odd": frame(SUBSCRIBE, b"#/a\x00+#\x00//\x00a//b\x00/a/b\x00*", 1),
    "deep-topic": frame(PUBLISH, "/".join(["l"] * 200).encode() + b"\x00d", 1),
}
stream = b"".join(frames[k] for k in ("subscribe", "publish", "publish-qos3", "message-broker", "broadcast"))
for i, (name, data) in enumerate(frames.items()):
    write("frame", name, bytes([i * 37 % 256]) + data)
write("frame", "stream", b"\x05" + stream)
write("frame", "stream-then-garbage", b"\x09" + stream + frames["unknown-op"] + frames["publish"])

# ---- core: configuration bytes + commands (see fuzz/core.c step()) ---------
def cmd(op, *args):
    return bytes([op]) + b"".join(a if isinstance(a, bytes) else bytes([a]) for a in args)


def hello(i, name):
    return cmd(1, i, len(name), name.encode())


def pub(i, topic, data, qos=1):
    return cmd(4, i, qos, len(topic), topic.encode(), len(data), data)


def sub(i, mask, qos=1):
    return cmd(3, i, 0, qos, len(mask), mask.encode())


base = cmd(0, 0) + cmd(0, 1) + cmd(0, 2) + hello(0, "a") + hello(1, "b") + hello(2, "c.int")
core_seeds = {
    "pubsub": base + sub(1, "ev/#") + pub(0, "ev/x", b"hello") + cmd(11, 1),
    "slow-consumer": base + sub(1, "#") + cmd(10, 1) + b"".join(pub(0, "t", b"x" * 50) for _ in range(10)) + cmd(10, 1),
    "block-internal": base + sub(2, "#") + cmd(10, 2) + b"".join(pub(0, "t", b"y" * 30) for _ in range(8)) + cmd(8, 100, 0),
    "message": base + cmd(5, 0, 1, 1, b"b", 2, b"hi") + cmd(5, 0, 1, 6, b"nobody", 1, b"x"),
    "broadcast": base + cmd(6, 0, 1, 1, b"*", 3, b"all"),
    "broker-rpc": base + cmd(5, 0, 1, 7, b".broker", 12, rpc_req("stats")),
    "client-list": base + cmd(5, 0, 1, 7, b".broker", len(rpc_req("client.list")), rpc_req("client.list")),
    "drop-peer": base + sub(1, "a/+") + cmd(9, 1) + pub(0, "a/b", b"z"),
    "idle": base + cmd(8, 0xff, 0xff) + cmd(8, 0xff, 0xff),
    "secondary": base + cmd(0, 0) + hello(3, "a%%w1") + cmd(9, 0) + cmd(11, 3),
    "busy-name": base + cmd(0, 0) + hello(3, "a"),
    "bad-name": cmd(0, 0) + cmd(1, 0, 3, b"\xff\xfe\xfd"),
    "dot-name": cmd(0, 0) + cmd(1, 0, 7, b".broker"),
    "raw-garbage": base + cmd(2, 0, 8, 0, b"\xff" * 8),
    "unsubscribe": base + sub(1, "x/#") + cmd(3, 1, 1, 1, 3, b"x/#"),
    "exclude": base + sub(1, "#") + cmd(3, 1, 2, 1, 1, b"t") + pub(0, "t", b"no"),
    "publish-for": base + sub(1, "t") + cmd(7, 0, 1, b"t", 1, b"b", 1),
    "limits": base + b"".join(sub(1, "m%d" % i) for i in range(10)),
    "many-conns": b"".join(cmd(0, 0) + hello(i, "n%d" % i) for i in range(10)),
    "realtime": base + sub(1, "#") + pub(0, "rt", b"now", qos=3),
    # masks that cover one another (the mask books): covered ones come back
    # when their cover goes
    "covers": base + sub(1, "a/b") + sub(1, "+/b") + sub(1, "a/#") + sub(1, "#")
    + cmd(3, 1, 1, 1, 1, b"#") + pub(0, "a/b", b"1") + cmd(3, 1, 1, 1, 3, b"a/#")
    + cmd(3, 1, 2, 1, 3, b"x/+") + cmd(3, 1, 2, 1, 3, b"x/#") + cmd(3, 1, 3, 1, 3, b"x/#")
    + pub(0, "x/y", b"2") + cmd(11, 1),
}
for i, (name, data) in enumerate(core_seeds.items()):
    cfgb = bytes([i & 1, 8 + i, 0x41 + i, 0x30 + i])
    write("core", name, cfgb + data)

# ---- topic / broadcast: lines ------------------------------------------------
topic_seeds = [
    b"\x01Mevents/#\nMevents/*/anomaly\nevents/process/lifecycle\nevents\nevents/net/anomaly\n",
    b"\x00Mevents/*/anomaly\nevents/x/anomaly\nevents/*/anomaly\n",
    b"\x01M#\n\na\na/b\n/\n",
    b"\x01M#/a\na\na/b\nb/c/d\n",
    b"\x01M+#\n+#\na\n#\n",
    b"\x01M//\n//\n/\n///\n",
    b"\x01Ma//b\na//b\na/b\na/x/b\n",
    b"\x01M/a/b\n/a/b\na/b\n",
    b"\x01M+\n\nx\nx/y\n",
    b"\x01M+/+\na/b\na\na/b/c\n",
    b"\x01Ma/+/c\nMa/#\nRa/#\na/b/c\na/b\n",
    b"\x01Ma/b\nM+/b\nMa/#\nM+/#\nM#\nM+/+\nM*/b/#\na/b\nc/b\na/b/c\n",
    b"\x01Ma+\na+\nab\n",
    b"\x00M*\n*\nx\n",
    b"\x01M*\n*\nx\n",
    b"\x01M.broker/warn\n.broker/warn\n",
    b"\x01M\xff\xfe\n\xff\xfe\n",
    b"\x01M" + "/".join(["a"] * 500).encode() + b"\n" + "/".join(["a"] * 500).encode() + b"\n",
    b"\x01M" + "/".join(["a", "b"] * 50).encode() + b"/#\n" + "/".join(["a", "b"] * 60).encode() + b"\n",
    b"\x01Mx/#/y\nx/a\nx/a/y\nx\n",
    b"\x01M#\nM+\nM+/+\nM+/+/+\na\na/b\na/b/c\na/b/c/d\n",
    b"\x01Ma/b\nMa/b\nRa/b\na/b\n",
]
for i, s in enumerate(topic_seeds):
    write("topic", "t%02d" % i, s)
bcast = [
    b"Mcollector.*\ncollector.proc\ncollector.net.1\ncollector\n",
    b"M*\na\na.b\n\n",
    b"M?\na\na.b\n",
    b"Mcollector.?\ncollector.x\ncollector.x.y\n",
    b"M?.*\na.b\na\na.b.c\n",
    b"Ma.b\na.b\na.bb\n",
    b"M\n\na\n",
    b"M..\n..\n.\n",
    b"M*.x\na.x\nfoo\n",
    b"Mmonitor.*\nmonitor.demo\nmonitors.x\n",
    b"Mdaemoneye-agent\ndaemoneye-agent\n",
    b"Mx.*\nx.\nx.y\n",
    b"M**\n**\nab\n",
    b"M??\n??\nab\n",
    b"Ma?\na?\nab\n",
    b"M\xff.*\n\xff.a\n",
    b"M*\n" + ".".join(["n"] * 300).encode() + b"\n",
    b"M?.?.?\na.b.c\na.b\n",
    b"Mcollector.process.*\ncollector.process.procmond-1\ncollector.process\n",
    b"Ma.*.c\na.b.c\na.b\n",
]
for i, s in enumerate(bcast):
    write("broadcast", "b%02d" % i, s)

# ---- rpc ---------------------------------------------------------------------
methods = ["test", "info", "stats", "client.list", "benchmark.test", "nope", ""]
for i, m in enumerate(methods):
    write("rpc", f"broker-built-{i}", bytes([2, i]))
params = [msgpack.packb({"filter": "^a"}), msgpack.packb({"filter": "("}), msgpack.packb({"filter": 5}),
          msgpack.packb([1, 2]), b"\xc1", msgpack.packb({"x": {"y": [1, {"z": None}]}}),
          b"\x81\xa6filter\xd9", b"\xdf\xff\xff\xff\xff",
          # past PCRE2's budgets: glibc's regcomp spent 1.1 GiB on the first
          msgpack.packb({"filter": "((a{1,100}){1,100}){1,100}"}),
          msgpack.packb({"filter": "^(a|a?)+$"}), msgpack.packb({"filter": "(" * 40 + ")" * 40}),
          # an array of nils at and past the params budget (64 KiB)
          b"\xdd" + (65531).to_bytes(4, "big") + b"\xc0" * 65531,
          b"\xdd" + (65532).to_bytes(4, "big") + b"\xc0" * 65532]
for i, p in enumerate(params):
    write("rpc", f"client-list-params-{i}", bytes([2, 3]) + p)
write("rpc", "broker-raw-request", b"\x00" + rpc_req("info"))
write("rpc", "broker-raw-notification", b"\x00\x00note")
write("rpc", "broker-raw-truncated", b"\x00\x01\x01\x02")
write("rpc", "client-reply", b"\x03\x11\x01\x00\x01\x00" + msgpack.packb({"ok": True}))
write("rpc", "client-error", b"\x03\x12\x01\x00\x01\x00\xa7\x80nope")
write("rpc", "client-error-short", b"\x03\x12\x01\x00\x01\x00\xa7")
write("rpc", "client-request", b"\x01\x01\x05\x00\x00\x00method\x00params")
write("rpc", "client-request-no-method-end", b"\x01\x01\x05\x00\x00\x00method")
write("rpc", "client-notification", b"\x01\x00hello")
write("rpc", "client-reply-from-other", b"\x07\x11\x01\x00\x01\x00x")

# ---- config --------------------------------------------------------------------
configs = {
    "design-example": """broker:
  mode: embedded
  embedded:
    max_connections: 64
    buffer_size: 10000
    transport:
      type: unix_socket
      path: /tmp/daemoneye-broker.sock
  standalone:
    address: 127.0.0.1:9090
    tls:
      enabled: false
      cert_file: /etc/daemoneye/broker.crt
      key_file: /etc/daemoneye/broker.key
""",
    "limits": """broker:
  timeout: 0.5
  queue_policy: drop_newest
  internal_queue_policy: block
  block_deadline_ms: 20
  star_is_plus: false
  force_register: true
  socket_mode: "0660"
  limits:
    payload_bytes_max: 1024
    name_bytes_max: 64
    topic_bytes_max: 128
    topic_levels_max: 8
    subscriptions_max: 16
    exclusions_max: 4
    queue_bytes_max: 65536
    queued_bytes_total_max: 1048576
    read_bytes_per_turn_max: 4096
""",
    "empty": "",
    "comment-only": "# nothing\n",
    "unknown-key": "broker:\n  nope: 1\n",
    "wrong-type": "broker:\n  timeout: [1, 2]\n",
    "negative": "broker:\n  timeout: -1\n",
    "huge-int": "broker:\n  limits:\n    payload_bytes_max: 99999999999999999999999\n",
    "bad-policy": "broker:\n  queue_policy: block\n",
    "bad-mode": "broker:\n  mode: cluster\n",
    "top-list": "- a\n- b\n",
    "tabs": "broker:\n\tmode: embedded\n",
    "unterminated": "broker: {mode: \"embedded\n",
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  "broker: *d\n",
    "alias-map": "x: &x {timeout: 3}\nbroker: *x\n",
    "merge-key": "x: &x {timeout: 3}\nbroker:\n  <<: *x\n",
    "invalid-utf8": "broker:\n  mode: \xff\xfe\n",
    "nul": "broker:\n  mode: emb\x00edded\n",
    "socket-long": "broker:\n  standalone:\n    socket: /" + "x" * 300 + "\n",
    "tls-on": "broker:\n  standalone:\n    tls:\n      enabled: true\n",
    "inconsistent": "broker:\n  limits:\n    queue_bytes_max: 10\n    queued_bytes_total_max: 5\n",
    "deep": "broker:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(50)),
    # nesting at and past the depth limit (8), and the quadratic-scanner shape
    "depth-8": "a: " + "[" * 7 + "]" * 7 + "\n",
    "depth-9": "a: " + "[" * 8 + "]" * 8 + "\n",
    "brackets": "broker: " + "[" * 4096 + "\n",
    # broker.acl: rules of every shape, open, and the default's groups
    "acl-rules": ("broker:\n  acl:\n"
                  "    - who: [{uid: 0}, {gid: 4242}]\n      names: [collector.*]\n"
                  "      publish: ['events/{1}/#']\n"
                  "      subscribe: {allow: ['#'], deny: [secret/#]}\n"
                  "    - who: {from: 10.1.0.0/16, cn: a.example}\n"
                  "      names: {allow: ['net.*'], deny: [net.bad]}\n"
                  "      send: ['{name}', '{9}']\n      broadcast: [net.?]\n"
                  "    - names: [monitor.?]\n      subscribe: [events/+/anomaly]\n"),
    "acl-open": "broker:\n  acl: open\n",
    "acl-groups": "broker:\n  trusted_group: root\n  monitor_group: nogroup\n",
    "acl-v6": "broker:\n  acl:\n    - {who: {from: '::1/128'}, names: ['*']}\n",
    # TLS, the broker's audit trail and expected uid, the agent's admins
    "tls-audit-uid": ("broker:\n  uid: root\n  audit_log: /tmp/a.jsonl\n"
                      "  audit_max_bytes: 4096\n  audit_keep: 2\n  standalone:\n"
                      "    address: 127.0.0.1:9924\n    tls: {enabled: true, "
                      "cert_file: c.pem, key_file: c.key, ca_file: ca.pem, "
                      "verify_client: true, client_cert_file: a.pem, "
                      "client_key_file: a.key}\nagent:\n  admins: ['admin.*', ops]\n"),
    # busrt-bridge's section (checked by every program), and the agent's switch
    "bridge": ("agent:\n  bridge: true\nbridge:\n  name: b\n  connect: /run/b.sock\n"
               "  host: web-01\n  subject_prefix: fleet.eu\n  masks: ['events/#', x/+]\n"
               "  nats:\n    urls: ['nats://a:4222', 'tls://b:4222']\n    creds_file: n.creds\n"
               "    tls: {ca_file: ca.pem, cert_file: c.pem, key_file: c.key}\n"
               "  stream: {name: DAEMONEYE, create: false, duplicate_window_ms: 60000}\n"
               "  window: {frames: 1024, mib: 8}\n  ack_timeout_ms: 500\n"
               "  drain_timeout_ms: 0\n"),
    "bridge-bad": "bridge:\n  stream: {name: 'a.b'}\n  window: {frames: 1}\n  nats: {urls: 5}\n",
}
for name, text in configs.items():
    write("config", name, text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)

# ---- client: seed byte, flags, then what a broker sends -------------------------
hs = b"\xeb\x01\x00\x01\x01"
client_seeds = {
    "handshake": hs,
    "bad-greeting": b"\xec\x01\x00",
    "bad-version": b"\xeb\x02\x00",
    "refused-busy": b"\xeb\x01\x00\x01\x76",
    "refused-data": b"\xeb\x01\x00\x72",
    "ack-ok": hs + b"\xfe\x01\x00\x00\x00\x01",
    "ack-late": hs + b"\xfe\x09\x00\x00\x00\x01",
    "nop": hs + b"\x00\x00\x00\x00\x00\x00",
    "nop-with-length": hs + b"\x00\x03\x00\x00\x00\x00abc",
    "publish": hs + delivered(PUBLISH, "pub", b"a/b", b"data"),
    "publish-no-topic-end": hs + b"\x01\x05\x00\x00\x00\x00pub\x00x",
    "message": hs + delivered(MESSAGE, "srv", b"hello"),
    "broadcast": hs + delivered(BROADCAST, "x", b"all", realtime=1),
    "rpc-reply": hs + delivered(MESSAGE, "srv", b"\x11\x01\x00\x01\x00ok"),
    "rpc-error": hs + delivered(MESSAGE, "srv", b"\x12\x01\x00\x01\x00\xa7\x80err"),
    "rpc-request": hs + delivered(MESSAGE, "caller", rpc_req("echo", b"p")),
    "rpc-notification": hs + delivered(MESSAGE, "caller", b"\x00note"),
    "unknown-kind": hs + b"\x42\x00\x00\x00\x00\x00",
    "len-4gib": hs + b"\x01\xff\xff\xff\xff\x00",
    "many": hs + b"".join(delivered(PUBLISH, "p", b"t", b"%d" % i) for i in range(50)),
    "warn": hs + delivered(PUBLISH, ".broker", b".broker/warn", msgpack.packb({"s": "shutdown", "t": 1})),
}
for i, (name, data) in enumerate(client_seeds.items()):
    write("client", name, bytes([i * 13 % 256, i % 8]) + data)


# ---- proto: a type byte (fuzz/proto.c's table) + an encoding ---------------
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def fv(num, v):  # varint field
    return varint(num << 3) + varint(v)


def fl(num, data):  # length-delimited field
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


record = (fv(1, 4242) + fv(2, 1) + fl(3, "sleep") + fl(4, "/usr/bin/sleep") + fl(5, "sleep") + fl(5, "5")
          + fv(6, 1700000000000) + varint(7 << 3 | 1) + struct.pack("<d", 1.5) + fv(8, 1 << 20)
          + fl(9, "ab" * 32) + fl(10, "sha256") + fv(11, 1000) + fv(12, 1) + fv(13, 1) + fv(14, 1700000000001))
pevent = fl(1, record) + fl(2, "cycle-1") + fv(3, 2)
corr = fl(1, "wf") + fl(2, "e-0") + fl(3, fl(1, "k") + fl(2, "v"))
event = (fl(1, "e-1") + fl(2, "c-1") + fv(3, 1700000000123) + fl(4, "collector.process.p1")
         + fl(5, "events/process/lifecycle") + fl(10, pevent) + fl(20, corr) + fv(30, 1) + fv(31, 123) + fv(32, 7))
cfgmsg = fv(2, 1000) + fv(3, 1) + fl(1, "process") + fl(5, fl(1, "a") + fl(2, "b"))
status = fl(1, "p1") + fv(2, 2) + fv(3, 99) + fv(5, 3) + fv(6, 5) + fl(7, "")
proto_seeds = {
    "event": (0, event),
    "event-unknown-fields": (0, event + fv(99, 7) + fl(100, "newer")),
    "event-network": (0, fl(11, fl(1, "net"))),
    "event-two-payloads": (0, fl(10, pevent) + fl(12, fl(1, "fs"))),
    "correlation": (1, corr),
    "process-event": (2, pevent),
    "record": (3, record),
    "record-truncated-varint": (3, b"\x08\xff\xff"),
    "record-wrong-wire-type": (3, varint(3 << 3) + b"\x01"),
    "record-bad-utf8": (3, fl(3, b"\xc0\xaf")),
    "config": (4, cfgmsg),
    "status": (5, status),
    "start-req": (6, fl(1, "process") + fl(2, "p1") + fl(3, cfgmsg) + fl(4, fl(1, "PATH") + fl(2, "/bin"))),
    "start-resp": (7, fv(1, 1) + fl(2, "p1") + fl(4, status)),
    "stop-req": (8, fl(1, "p1") + fv(2, 1) + fv(3, 30)),
    "stop-resp": (9, fv(1, 0) + fl(2, "no") + fv(3, 12)),
    "restart": (10, fl(1, "p1")),
    "status-resp": (13, fl(1, status) + fl(1, status)),
    "health-resp": (15, fv(1, 1) + fl(2, "ok") + fl(3, fl(1, "cpu") + varint(2 << 3 | 1) + struct.pack("<d", 0.5)) + fv(4, 99)),
    "heartbeat": (16, fl(1, "daemoneye-agent") + fv(2, 5) + fv(3, 1)),
    "update-config": (21, fl(1, "p1") + fl(2, cfgmsg) + fv(3, 1)),
    "update-config-resp": (22, fv(1, 0) + fl(3, fl(1, "scan_interval_ms") + fl(2, "too small"))),
    "deep-unknown-groups": (0, b"\x0b" * 50 + b"\x0c" * 50),
    "length-4gib": (0, b"\x0a\xff\xff\xff\xff\x0f"),
    "negative-int32": (8, fv(3, (1 << 64) - 1)),
}
for name, (t, data) in proto_seeds.items():
    write("proto", name, bytes([t]) + data)


# ---- services: byte 0 even = RPC calls to a collector, odd = the diff ---------
# a call: a method byte (< 0xf0: index into de_methods: 0 lifecycle.start,
# 1 .stop, 2 .restart, 3 .status, 4 health.check, 5 .heartbeat, 6 .metrics,
# 7 config.get, 8 .validate, 9 .update; else a raw name), u16 length, params
def call(idx, params=b""):
    return bytes([idx]) + struct.pack("<H", len(params)) + params


def raw_call(name, params=b""):
    return bytes([0xf0, len(name)]) + name + struct.pack("<H", len(params)) + params


svc_rpc = {
    "status": call(3),
    "heartbeat": call(5, fv(2, 7) + fl(1, "daemoneye-agent")),
    "health-metrics": call(4, fv(2, 1)),
    "health-other-id": call(4, fl(1, "p9")),
    "metrics": call(6),
    "config-get": call(7),
    "config-validate-bad": call(8, fl(2, fv(2, 5) + fl(1, "network") + fl(5, fl(1, "k") + fl(2, "v")))),
    "config-update": call(9, fl(2, cfgmsg)),
    "config-update-validate-only": call(9, fl(2, fv(2, 50)) + fv(3, 1)),
    "config-update-no-config": call(9),
    "not-served": call(0, fl(2, "f")),
    "malformed": call(4, b"\xff\xff\xff"),
    "stop": call(1) + call(3),
    "raw-unknown": raw_call(b"nope.x"),
    "raw-known": raw_call(b"health.check"),
    "many": b"".join(call(i) for i in range(10)),
}
for name, data in svc_rpc.items():
    write("services", "rpc-" + name, b"\x00" + data)


def table(*procs):  # procs: (a, b) bytes: pid/start from a, the rest from b
    return bytes([len(procs)]) + b"".join(bytes(p) for p in procs)


svc_diff = {
    "one-cycle": table((1, 0), (2, 4)),
    "start-and-end": table((1, 0)) + table((1, 0), (2, 0)) + table((1, 0)),
    "pid-reuse": table((3, 0)) + table((27, 0)),
    "rename": table((4, 0)) + table((4, 4)),
    "hash-appears": table((5, 0)) + table((5, 32)) + table((5, 48)),
    "repeats": table((6, 0), (6, 0), (6, 1)) + table((6, 1)),
    "empty-then-full": table() + table(*[(i, i) for i in range(16)]),
    "parent-with-a-higher-pid": table() + table((0, 2), (1, 0)),
    "churn": b"".join(table(*[((i * 7 + c) % 40, c) for i in range(c % 5 + 1)]) for c in range(8)),
}
for name, data in svc_diff.items():
    write("services", "diff-" + name, b"\x01" + data)


# ---- scenario: byte 0 even = a scenario, odd = a fault plan -------------------
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
scen_dir = os.path.join(ROOT, "scenarios")
for name in sorted(os.listdir(scen_dir)):
    if name.endswith(".yaml"):
        with open(os.path.join(scen_dir, name), "rb") as f:
            write("scenario", "shipped-" + name, b"\x00" + f.read()[:200000])
for sub in ("plans", "regress"):
    for name in sorted(os.listdir(os.path.join(scen_dir, sub))):
        with open(os.path.join(scen_dir, sub, name), "rb") as f:
            body = f.read()
        write("scenario", sub + "-" + name, (b"\x01" if sub == "plans" else b"\x00") + body[:200000])
small = (b"version: 1\nname: s\nduration_ms: 1000\ncollectors:\n  - id: c\n    table:\n"
         b"      - at_ms: 0\n        add:\n          - [1, 1, 0, 0, \"a\", \"/a\", \"a b\"]\n")
bad_scen = {
    "small": small,
    "no-version": small.replace(b"version: 1\n", b""),
    "version-2": small.replace(b"version: 1", b"version: 2"),
    "unknown-key": small + b"colour: red\n",
    "dup-process": small + b"      - at_ms: 5\n        add:\n          - [1, 1, 0, 0, \"a\", \"/a\", \"\"]\n",
    "del-unknown": small + b"      - at_ms: 5\n        del: [[9, 9]]\n",
    "time-backwards": small + b"      - at_ms: 0\n        del: [[1, 1]]\n",
    "set-bad-field": small + b"      - at_ms: 5\n        set: [[1, 1, colour, red]]\n",
    "short-add": small + b"      - at_ms: 5\n        add: [[2, 2]]\n",
    "alias-bomb": b"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nversion: 1\n",
    "not-yaml": b"{[}:",
    "empty": b"",
}
for name, data in bad_scen.items():
    write("scenario", "scen-" + name, b"\x00" + data)
bad_plan = {
    "ok": b"version: 1\nfaults:\n  - {at_ms: 5, kind: reset, target: x}\n",
    "unknown-kind": b"version: 1\nfaults:\n  - {at_ms: 5, kind: meteor}\n",
    "no-at": b"version: 1\nfaults:\n  - {kind: delay}\n",
    "huge-number": b"version: 1\nfaults:\n  - {at_ms: 99999999999999999999999, kind: delay}\n",
}
for name, data in bad_plan.items():
    write("scenario", "plan-" + name, b"\x01" + data)

# ---- sim: tapes of random choices ------------------------------------------------
st = 12345
def rnd():
    global st
    st = (st + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = st
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)
for i, n in enumerate([0, 1, 8, 64, 256, 1024, 4096, 16384] + [512] * 12):
    write("sim", f"tape-{i}-{n}", b"".join(struct.pack("<Q", rnd()) for _ in range((n + 7) // 8))[:n])

counts = {t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))}
short = {t: n for t, n in counts.items() if n < 20}
if short:
    sys.exit(f"seeds.py: fewer than 20 seeds: {short}")
print("seeds:", ", ".join(f"{t} {n}" for t, n in counts.items()))
