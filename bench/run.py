# SPDX-License-Identifier: Apache-2.0
"""make bench: our broker (busrtd, its default configuration) with our C
client (busrt-bench) over a Unix socket and TCP, side by side with the
peer brokers at theirs — NATS (nats-server, libnats), Redis pub/sub
(redis-server, hiredis) and Mosquitto (MQTT, libmosquitto), each started
here on loopback and stopped by its PID, driven by busrt-peers on the same
workloads — and against two baselines measured in the same run:

  raw      two processes streaming the same framed deliveries through a
           socketpair in 64 KiB writes (the physical bound), and bouncing
           one frame for round trips;
  internal the embedded broker's in-process path (internal clients).

Every publisher numbers its messages and every subscriber counts what is
lost (a sequence jump, or what never came): a broker that cuts a slow
subscriber or drops for it shows here, not as a crash of the bench.

Every figure is the median of --reps runs with min-max, and is printed as a
ratio to both baselines. The simulator's figures (busrt-sim: deliveries per
CPU-second, sweep wall time) are against the in-process channel it replaces
(bus_chan, the oracle) fed the same events in the same run. Syscall counts come from the hosts' own counters
(busrtd's exit stats, the clients' host stats).

  /usr/bin/python3 bench/run.py --bin build/bin [--reps 5] [--quick]
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pytest"))
from busclient import LOOPBACK_ACL, free_port  # noqa: E402


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"machine: {platform.node()} {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPUs ({cpu}), python {platform.python_version()}")


_PKI = None


def pki():
    """A throwaway CA and a certificate for 127.0.0.1 (openssl), once."""
    global _PKI
    if _PKI:
        return _PKI
    d = tempfile.mkdtemp(prefix="bbpki", dir="/tmp")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=bench CA")
    ossl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=busrtd")
    with open(os.path.join(d, "san"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san")
    _PKI = d
    return d


class Broker:
    """busrtd at its defaults on a Unix socket; tcp: also 127.0.0.1 (one
    ACL rule added for it); tcp == "tls": that listener speaks TLS."""

    def __init__(self, bindir, tcp=False, config=None):
        self.bindir = bindir
        self.config = config  # YAML for a Unix-socket broker (None: none)
        self.dir = tempfile.mkdtemp(prefix="bb", dir="/tmp")
        self.path = os.path.join(self.dir, "b.sock")
        self.tcp = tcp
        self.client_args = []

    def __enter__(self):
        argv = [os.path.join(self.bindir, "busrtd"), "-B", self.path]  # defaults
        self.addr = self.path
        if self.tcp:
            port = free_port()
            argv += ["-B", f"127.0.0.1:{port}"]
            self.addr = f"127.0.0.1:{port}"
            # the defaults refuse TCP peers (no credentials): the default
            # configuration plus one rule for this machine's loopback
            cfg = os.path.join(self.dir, "tcp.yaml")
            text = LOOPBACK_ACL
            if self.tcp == "tls":
                d = pki()
                text += (f"  standalone:\n    tls: {{enabled: true, cert_file: {d}/srv.pem, "
                         f"key_file: {d}/srv.key}}\n")
                self.addr = "tls://" + self.addr
                self.client_args = ["--tls-ca", f"{d}/ca.pem"]
            with open(cfg, "w") as f:
                f.write(text)
            argv += ["--config", cfg]
        elif self.config:
            cfg = os.path.join(self.dir, "b.yaml")
            with open(cfg, "w") as f:
                f.write(self.config)
            argv += ["--config", cfg]
        self.err = open(os.path.join(self.dir, "err"), "w+")
        self.proc = subprocess.Popen(argv, stderr=self.err)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("busrtd did not start")
            time.sleep(0.01)
        time.sleep(0.05)
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.err.seek(0)
        text = self.err.read()
        m = re.search(r"exit stats: (.*)", text)
        return dict(kv.split("=") for kv in m.group(1).split()) if m else {}

    def __exit__(self, *a):
        if self.proc.poll() is None:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def bench(bindir, *args, stdin=None):
    return subprocess.Popen([os.path.join(bindir, "busrt-bench"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(p):
    line = p.stderr.readline()
    if "ready" not in line:
        raise RuntimeError(f"not ready: {line}{p.stderr.read()}")


def result(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"busrt-bench failed ({p.returncode}): {err}")
    return json.loads(out.strip().splitlines()[-1])


def pubsub(bindir, tcp, pubs, subs, mask, n, config=None):
    """n messages per publisher; each subscriber expects pubs*n."""
    with Broker(bindir, tcp, config) as b:
        sp = [bench(bindir, "sub", "-s", b.addr, "-n", f"sub{i}", "--mask", mask,
                    "--expect", str(n * pubs), *b.client_args) for i in range(subs)]
        for p in sp:
            wait_ready(p)
        pp = [bench(bindir, "pub", "-s", b.addr, "-n", f"pub{i}", "--topic", f"bench/p{i}",
                    "--messages", str(n), *b.client_args) for i in range(pubs)]
        pr = [result(p) for p in pp]
        sr = [result(p) for p in sp]
        st = b.stop()
    delivered = sum(r["messages"] for r in sr)
    # the slowest subscriber's span bounds the delivery rate
    secs = max(r["seconds"] for r in sr)
    return {
        "rate": delivered / secs,
        "lost": sum(r["lost"] for r in sr),
        "broker_writes": int(st["writes"]) / delivered,
        "broker_reads": int(st["reads"]) / (n * pubs),
        "pub_writes": sum(r["host_writes"] for r in pr) / (n * pubs),
        "sub_reads": sum(r["host_reads"] for r in sr) / delivered,
    }


# ---- the peer brokers, each at its defaults -----------------------------------


class Peer:
    """One peer broker: its server on loopback (default configuration),
    stopped by its PID."""

    def __init__(self, proto):
        self.proto = proto
        self.dir = tempfile.mkdtemp(prefix="pb", dir="/tmp")
        self.port = free_port()

    def __enter__(self):
        if self.proto == "nats":
            argv = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port)]
            self.addr = f"nats://127.0.0.1:{self.port}"
        elif self.proto == "redis":  # no persistence: a pure pub/sub server
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", self.dir]
            self.addr = f"127.0.0.1:{self.port}"
        else:
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:  # a listener is all 2.0 needs said
                f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
            argv = ["mosquitto", "-c", conf]
            self.addr = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        import socket
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} did not start")
                time.sleep(0.02)

    def __exit__(self, *a):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class JetStream:
    """nats-server -js on loopback, file storage in a temp dir, stopped by
    its PID."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="bj", dir="/tmp")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-sd", os.path.join(self.dir, "js"), "-a", "127.0.0.1",
             "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("nats-server -js did not start")
                time.sleep(0.02)

    def __exit__(self, *a):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def bridge_run(bindir, n):
    """busrtd (defaults) and busrt-bridge (defaults but a drain long enough
    to store everything) into a nats-server -js stream on file storage, a
    PubAck per frame: frames stored per second from the first publish to
    the bridge's exit after the last PubAck."""
    with JetStream() as js, Broker(bindir) as b:
        cfg = os.path.join(js.dir, "bridge.yaml")
        with open(cfg, "w") as f:
            f.write("bridge:\n  drain_timeout_ms: 600000\n")
        err = open(os.path.join(js.dir, "bridge.err"), "w+")
        br = subprocess.Popen([os.path.join(bindir, "busrt-bridge"), "--config", cfg,
                               "--connect", b.addr, "--nats", js.url, "--mask", "bench/#",
                               "--host", "bench", "--log-level", "info"],
                              stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + 10
        while True:
            err.seek(0)
            log = err.read()
            if "registered as" in log and "created stream" in log:
                break
            if time.monotonic() > deadline or br.poll() is not None:
                br.kill()
                raise RuntimeError(f"busrt-bridge did not start: {log}")
            time.sleep(0.02)
        t0 = time.monotonic()
        result(bench(bindir, "pub", "-s", b.addr, "-n", "pub0", "--topic", "bench/p0",
                     "--messages", str(n)))
        # the publisher is done when its frames are written, not routed:
        # the bridge's counts (SIGUSR1) say when all n are stored
        deadline = time.monotonic() + 300
        while True:
            br.send_signal(signal.SIGUSR1)
            st = json.loads(br.stdout.readline())
            if st["stored"] >= n or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        secs = time.monotonic() - t0
        br.send_signal(signal.SIGTERM)
        out, _ = br.communicate(timeout=600)
        b.stop()
    st = json.loads(out.strip().splitlines()[-1])
    return {"rate": st["stored"] / secs, "lost": n - st["stored"],
            "resent": st["resent"], "paused": st["paused"]}


def js_bound(bindir, n):
    """libnats publishing n frames to JetStream directly, asynchronously,
    each with a message id (busrt-peers js-pub): the bridge's ceiling."""
    with JetStream() as js:
        r = result(peer_tool(bindir, "js-pub", "--proto", "nats", "--addr", js.url,
                             "--messages", str(n)))
    return r["messages"] / r["seconds"]


def peer_tool(bindir, *args):
    return subprocess.Popen([os.path.join(bindir, "busrt-peers"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def peer_pubsub(bindir, proto, pubs, subs, mask, n):
    with Peer(proto) as pe:
        common = ["--proto", proto, "--addr", pe.addr]
        sp = [peer_tool(bindir, "sub", *common, "--mask", mask, "--expect", str(n * pubs))
              for _ in range(subs)]
        for p in sp:
            wait_ready(p)
        pp = [peer_tool(bindir, "pub", *common, "--topic", f"bench/p{i}",
                        "--messages", str(n)) for i in range(pubs)]
        for p in pp:
            result(p)
        sr = [result(p) for p in sp]
    return {"rate": sum(r["messages"] for r in sr) / max(r["seconds"] for r in sr),
            "lost": sum(r["lost"] for r in sr)}


def peer_rpc(bindir, proto, calls):
    with Peer(proto) as pe:
        common = ["--proto", proto, "--addr", pe.addr]
        srv = peer_tool(bindir, "rpc-server", *common)
        wait_ready(srv)
        r = result(peer_tool(bindir, "rpc-client", *common, "--calls", str(calls)))
        srv.send_signal(signal.SIGTERM)
        srv.communicate(timeout=10)
    return r


PEERS = ("nats", "redis", "mqtt")
PEER_NAMES = {"nats": "NATS (nats-server)", "redis": "Redis pub/sub",
              "mqtt": "Mosquitto (MQTT)"}


def rpc_on(bindir, b, calls, no_ack=False):
    """Sequential RPC round trips through the running broker b (no_ack:
    requests with QoS none, else QoS processed)."""
    srv = bench(bindir, "rpc-server", "-s", b.addr, "-n", "bench.server",
                *b.client_args)
    wait_ready(srv)
    r = result(bench(bindir, "rpc-client", "-s", b.addr, "-n", "bench.caller",
                     "--target", "bench.server", "--calls", str(calls),
                     *(["--no-ack"] if no_ack else []), *b.client_args))
    srv.send_signal(signal.SIGTERM)
    srv.communicate(timeout=10)
    return r


def rpc(bindir, tcp, calls, no_ack=False):
    with Broker(bindir, tcp) as b:
        r = rpc_on(bindir, b, calls, no_ack)
        b.stop()
    return r


def busrt_style(bindir, workers, iters):
    """BUS/RT's own benchmark stages (busrt-cli benchmark: send,
    send+recv, rpc.call, rpc.call+handle, call0; QoS none and processed)
    on one connection per worker, through busrtd at its defaults."""
    with Broker(bindir) as b:
        p = subprocess.run([os.path.join(bindir, "busrt-cli"), b.addr, "benchmark",
                            "--json", "-w", str(workers), "-i", str(iters),
                            "--payload-size", "100"],
                           capture_output=True, text=True, timeout=600)
        b.stop()
    if p.returncode != 0:
        raise RuntimeError(f"busrt-cli benchmark failed: {p.stderr}")
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    return {r["stage"]: r["iters_per_s"] for r in rows if "stage" in r}


def scale(bindir, conns, calls, reps):
    """busrtd (defaults but max_connections) with `conns` idle registered
    clients: RSS per connection, busrtd's CPU while they idle (each pings
    every 2 s, as a client's keepalive does; the broker sends its NOPs),
    and RPC round trips between two other clients, before the idle ones
    connect and among them, alternating."""
    import resource
    import threading
    import busclient
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = conns + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        conns, want = hard - 256, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    cfg = f"broker:\n  standalone:\n    max_connections: {conns + 64}\n"
    out = {"conns": conns, "alone": [], "among": []}
    with Broker(bindir, config=cfg) as b:
        out["alone"].append(rpc_on(bindir, b, calls))
        base = rss_kb(b.proc.pid)
        cs, stop = [], threading.Event()
        ping = bytes(9)  # a NOP frame: the client's keepalive

        def keepalive():
            while not stop.wait(2.0):
                for c in list(cs):
                    c.send(ping)
        t = threading.Thread(target=keepalive, daemon=True)
        t.start()
        t0 = time.monotonic()
        try:
            for i in range(conns):
                cs.append(busclient.connect(b.path, f"idle.{i}", timeout=30))
            out["connect_s"] = time.monotonic() - t0
            time.sleep(0.5)
            out["rss_kb"], out["base_kb"] = rss_kb(b.proc.pid), base
            cpu0, _, _ = proc_cpu_rss(b.proc.pid)
            time.sleep(5.0)
            cpu1, _, _ = proc_cpu_rss(b.proc.pid)
            out["idle_cpu_pct"] = (cpu1 - cpu0) / 5.0 * 100
            for _ in range(reps):
                out["among"].append(rpc_on(bindir, b, calls))
            # every idle client is still there (none cut for silence)
            ctl = busclient.connect(b.path, "bench.lister")
            names = [x["name"] for x in ctl.rpc("client.list", timeout=30)[1]["clients"]]
            ctl.close()
            out["alive"] = sum(x.startswith("idle.") for x in names)
        finally:
            stop.set()
            t.join(timeout=10)
            for c in cs:
                c.close()
        for _ in range(reps - 1):
            out["alone"].append(rpc_on(bindir, b, calls))
        out["stats"] = b.stop()
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_rss(bindir, embedded, clients=48):
    """RSS of a broker with `clients` idle socket clients registered, and
    its CPU over 3 s while they idle (busrt-demo publishes once a second)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pytest"))
    import busclient
    d = tempfile.mkdtemp(prefix="br", dir="/tmp")
    path = os.path.join(d, "r.sock")
    if embedded:  # the embedded broker with its two internal clients
        argv = [os.path.join(bindir, "busrt-demo"), "--socket", path, "--seconds", "0",
                "--rate", "1"]
    else:
        argv = [os.path.join(bindir, "busrtd"), "-B", path]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start")
            time.sleep(0.01)
        time.sleep(0.1)
        base = rss_kb(p.pid)
        cs = [busclient.connect(path, f"idle.{i}") for i in range(clients)]
        assert cs[0].rpc("test")[0] == "reply"
        time.sleep(0.2)
        full = rss_kb(p.pid)
        # CPU while they idle: no busy polling (the design: under 1 %)
        cpu0 = proc_cpu_rss(p.pid)[0]
        time.sleep(3.0)
        idle_pct = (proc_cpu_rss(p.pid)[0] - cpu0) / 3.0 * 100
        for c in cs:
            c.close()
        return base, full, idle_pct
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        shutil.rmtree(d, ignore_errors=True)


def proc_cpu_rss(pid):
    """(utime+stime seconds, VmRSS kB, VmHWM kB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


def daemoneye(bindir, calls, events, seconds, reps):
    """procmond's collector code at full speed, health.check round trips to
    a real procmond, procmond's CPU and RSS at the default interval, and the
    agent's RSS with the embedded broker."""
    out = {}
    with Broker(bindir) as b:
        out["collector"] = [result(bench(bindir, "collector", "-s", b.addr, "--messages",
                                         str(events)))["rate"] for _ in range(reps)]
        pm = subprocess.Popen([os.path.join(bindir, "procmond"), "--connect", b.addr,
                               "--id", "bench"], stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # registered, first cycle (hashes) done
        out["health"] = [result(bench(bindir, "rpc-client", "-s", b.addr, "-n", "monitor.bench",
                                      "--target", "collector.process.bench", "--method",
                                      "health.check", "--size", "0", "--calls", str(calls)))
                         for _ in range(reps)]
        # CPU over a window of its own: nothing but its cycles
        cpu0, _, _ = proc_cpu_rss(pm.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        cpu1, rss, hwm = proc_cpu_rss(pm.pid)
        out["procmond"] = ((cpu1 - cpu0) / (time.monotonic() - t0) * 100, rss, hwm,
                           time.monotonic() - t0)
        pm.send_signal(signal.SIGTERM)
        pm.wait(timeout=10)
        b.stop()
    d = tempfile.mkdtemp(prefix="de", dir="/tmp")
    ag = start_agent(bindir, d)
    try:
        time.sleep(min(seconds, 3))
        _, rss, hwm = proc_cpu_rss(ag.pid)
        out["agent"] = (rss, hwm)
    finally:
        ag.send_signal(signal.SIGTERM)
        ag.wait(timeout=20)
        shutil.rmtree(d, ignore_errors=True)
    return out


ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def start_agent(bindir, d):
    """daemoneye-agent at its defaults, its embedded broker on d/b.sock,
    supervising one procmond (p1)."""
    cfg = os.path.join(d, "agent.yaml")
    with open(cfg, "w") as f:
        f.write(f"broker:\n  embedded:\n    transport:\n      type: unix_socket\n"
                f"      path: {d}/b.sock\nagent:\n  collectors:\n    - id: p1\n"
                f"      command: [{os.path.join(bindir, 'procmond')}]\n")
    return subprocess.Popen([os.path.join(bindir, "daemoneye-agent"), "--config", cfg],
                            stderr=subprocess.DEVNULL)


def protobuf_module():
    """daemoneye_pb2, generated by protoc for this run."""
    import importlib
    out = tempfile.mkdtemp(prefix="pb", dir="/tmp")
    subprocess.run(["protoc", f"--proto_path={ROOT}/proto", f"--python_out={out}",
                    "daemoneye.proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("daemoneye_pb2")


def burst(bindir, nproc, arg_bytes, timeout=120):
    """The DaemonEye burst: nproc processes with arg_bytes command lines
    started within one scan interval, under the agent's embedded broker and
    a real procmond at the default interval. Every one must reach the
    agent; the delay of each is from its start to its DISCOVERY at a
    watcher on the agent's broker."""
    sys.path.insert(0, os.path.join(ROOT, "pytest"))
    import busclient
    pb = protobuf_module()
    d = tempfile.mkdtemp(prefix="db", dir="/tmp")
    sock = os.path.join(d, "b.sock")
    ag = start_agent(bindir, d)
    procs = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                w = busclient.connect(sock, "bench.watch")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the agent did not start")
                time.sleep(0.05)
        assert w.subscribe("events/process/lifecycle") == 1
        time.sleep(2.5)  # procmond running, past its first cycle
        arg = "a" * arg_bytes
        born = {}
        t0 = time.monotonic()
        for _ in range(nproc):
            p = subprocess.Popen(["sh", "-c", "read x", arg], stdin=subprocess.PIPE)
            procs.append(p)
            born[p.pid] = time.monotonic()
        spawn_s = time.monotonic() - t0
        seen = {}
        for e in busclient.events(pb, w, timeout):
            pid = e.process_event.process.pid
            if e.process_event.event_type == pb.ProcessEvent.DISCOVERY and pid in born:
                seen.setdefault(pid, time.monotonic())
                if len(seen) == nproc:
                    break
        delays = sorted(seen[p] - born[p] for p in seen)
        span = max(seen.values()) - min(seen.values()) if seen else 0
        # the agent's own view: its stream of p1, complete and without gaps
        time.sleep(2)
        # lifecycle.* answers agent.admins only (admin.* by default)
        adm = busclient.connect(sock, "admin.bench")
        r = adm.rpc("lifecycle.status", pb.CollectorStatusRequest(collector_id="p1")
                    .SerializeToString(), target="daemoneye-agent")
        adm.close()
        if r[0] != "reply":
            raise RuntimeError(f"lifecycle.status: {r}")
        st = pb.CollectorStatusResponse.FromString(r[2]).collectors[0]
        w.close()
        return {"reported": len(seen), "spawn_s": spawn_s,
                "events_per_s": len(seen) / span if span else 0,
                "worst_s": delays[-1] if delays else 0,
                "p50_s": delays[len(delays) // 2] if delays else 0,
                "agent_gaps": st.gaps, "agent_processes": st.processes,
                "agent_events": st.events}
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        ag.send_signal(signal.SIGTERM)
        ag.wait(timeout=20)
        shutil.rmtree(d, ignore_errors=True)


def cpu_run(argv):
    """Runs argv; its stdout and the CPU seconds (user + system) it and its
    children used."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise RuntimeError(f"{argv[0]} exited {p.returncode}: {out}")
    return out, ru.ru_utime + ru.ru_stime


def simulator(bindir, seeds, reps):
    """Simulated deliveries per CPU-second of a fault-free sweep of the
    rec-burst recording (busrt-sim forks one worker: its CPU is counted),
    the in-process channel's rate on the same events, and the wall time of
    a 1,000-seed sweep of the default scenario on two jobs."""
    sim = os.path.join(bindir, "busrt-sim")
    burst = os.path.join(ROOT, "scenarios", "rec-burst.yaml")
    rates = []
    for _ in range(reps):
        out, cpu = cpu_run([sim, "sweep", burst, "--seeds", f"1..{seeds}", "-j1",
                            "--faults", "none"])
        rates.append(int(re.search(r"(\d+) deliveries", out).group(1)) / cpu)
    oracle = []
    for seed in range(1, reps + 1):
        out, _ = cpu_run([sim, "run", burst, "--seed", str(seed), "--faults", "none", "--json"])
        oracle.append(json.loads(out)["throughput"]["oracle_per_cpu_s"])
    walls = []
    for _ in range(reps):
        t0 = time.monotonic()
        out, _ = cpu_run([sim, "sweep", os.path.join(ROOT, "scenarios", "default.yaml"),
                          "--seeds", "1..1000", "-j", "2"])
        walls.append(time.monotonic() - t0)
        faults = re.search(r"faults injected: (.*)", out).group(1)
    return rates, oracle, walls, faults


T0 = time.monotonic()


def stage(what):
    """Where make bench is, on stderr (the figures go to stdout)."""
    t = int(time.monotonic() - T0)
    print(f"bench: [{t // 60:02d}:{t % 60:02d}] {what}", file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs), min(xs), max(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small counts (smoke)")
    ap.add_argument("--only-sim", action="store_true", help="the simulator's figures only")
    ap.add_argument("--only-scale", action="store_true",
                    help="the 10,000 idle connections' figures only")
    a = ap.parse_args()
    bindir = os.path.abspath(a.bin)
    n = 100000 if a.quick else 1000000
    calls = 2000 if a.quick else 20000
    reps = 1 if a.quick else a.reps

    print(machine_line())
    if a.only_sim:
        return print_sim(bindir, a.quick, reps)
    if a.only_scale:
        return print_scale(bindir, calls, max(reps, 3))
    print(f"100-byte payloads; {n} messages per publisher; {calls} RPC calls; "
          f"median of {reps} (min-max)\n")

    def runs(fn):
        return [fn() for _ in range(reps)]

    stage("baselines: the raw socket bound and the embedded internal path")
    raw = runs(lambda: result(bench(bindir, "raw-stream", "--messages", str(n * 4)))["rate"])
    rawrt = runs(lambda: result(bench(bindir, "raw-pingpong", "--rounds", str(calls))))
    emb = runs(lambda: (lambda r: r["messages"] / r["seconds"])(
        result(bench(bindir, "embedded", "--messages", str(n)))))
    embrt = runs(lambda: result(bench(bindir, "embedded-rpc", "--calls", str(calls))))
    raw_m, emb_m = med(raw)[0], med(emb)[0]

    rows = []

    def thr(name, vals, extra=""):
        m, lo, hi = med(vals)
        rows.append((name, f"{m / 1e6:7.2f} M/s", f"{lo / 1e6:.2f}-{hi / 1e6:.2f}",
                     f"{m / raw_m:6.3f}", f"{m / emb_m:6.2f}", extra))

    thr("raw socketpair stream (bound)", raw)
    thr("embedded internal 1->1", emb)
    print(f"{'baselines':34} {'median':>11} {'min-max':>12} {'/raw':>7} {'/internal':>9}")
    for r in rows:
        print(f"{r[0]:34} {r[1]:>11} {r[2]:>12} {r[3]:>7} {r[4]:>9}")

    # every broker at its default configuration, the same workloads
    workloads = (("fanin1  1->1", 1, 1, "bench/#"),
                 ("fanout4 1->4 on bench/+", 1, 4, "bench/+"),
                 ("fanin8  8->1", 8, 1, "bench/#"))
    print(f"\nthroughput, every broker at its defaults (delivered msgs/s; lost = "
          f"messages that never arrived, all {reps} runs)")
    print(f"{'workload / broker':34} {'median':>11} {'min-max':>12} {'lost':>9} "
          f"{'/best peer':>10} {'/raw':>7}  syscalls")
    summary = {}
    for label, pubs, subs, mask in workloads:
        stage(f"throughput: {label}")
        per = n // 8 if pubs == 8 else n
        res = {}
        for tcp, name in ((False, "busrtd unix"), (True, "busrtd tcp"),
                          ("tls", "busrtd tcp+TLS")):
            res[name] = runs(lambda: pubsub(bindir, tcp, pubs, subs, mask, per))
        for proto in PEERS:
            res[PEER_NAMES[proto]] = runs(
                lambda: peer_pubsub(bindir, proto, pubs, subs, mask, per))
        best = max(med([r["rate"] for r in res[PEER_NAMES[p]]])[0] for p in PEERS)
        print(f"{label}")
        for name, rs in res.items():
            m, lo, hi = med([r["rate"] for r in rs])
            lost = sum(r["lost"] for r in rs)
            sc = ""
            if name.startswith("busrtd"):
                last = rs[-1]
                sc = (f"broker w/msg {last['broker_writes']:.4f} r/msg "
                      f"{last['broker_reads']:.4f}; sub r/msg {last['sub_reads']:.4f}")
            print(f"  {name:32} {m / 1e6:7.2f} M/s {lo / 1e6:5.2f}-{hi / 1e6:5.2f} "
                  f"{lost:9d} {m / best:10.2f} {m / raw_m:7.3f}  {sc}")
            summary[(label, name)] = (m, lost, m / best)

    # the price of topic statistics (on by default, depth 3): the same
    # workloads against a broker with them off, runs interleaved
    off = "broker:\n  topic_stats: {depth: 0}\n"
    stage("topic statistics on against off")
    print("\ntopic statistics (default: on, depth 3) vs off, busrtd unix, runs interleaved")
    for label, pubs, subs, mask in workloads[:2]:
        on_r, off_r = [], []
        for _ in range(reps):
            on_r.append(pubsub(bindir, False, pubs, subs, mask, n)["rate"])
            off_r.append(pubsub(bindir, False, pubs, subs, mask, n, off)["rate"])
        m_on, m_off = med(on_r)[0], med(off_r)[0]
        print(f"  {label:32} on {m_on / 1e6:6.2f} M/s  off {m_off / 1e6:6.2f} M/s  "
              f"on/off {m_on / m_off:.3f}")

    def lat(name, vals):
        p50 = med([v["p50_us"] for v in vals])
        p99 = med([v["p99_us"] for v in vals])
        p999 = med([v["p999_us"] for v in vals])
        return (name, p50, p99, p999)

    lrows = [lat("raw socketpair ping-pong (bound)", rawrt),
             lat("embedded internal RPC", embrt)]
    stage("latency: sequential RPC calls")
    for tcp, name in ((False, "unix"), (True, "tcp"), ("tls", "tcp+TLS")):
        lrows.append(lat(f"busrtd {name} RPC round trip",
                         runs(lambda: rpc(bindir, tcp, calls))))
    lrows.append(lat("busrtd unix RPC, QoS none",
                     runs(lambda: rpc(bindir, False, calls, no_ack=True))))
    first_peer = len(lrows)
    for proto in PEERS:
        lrows.append(lat(f"{PEER_NAMES[proto]} request/reply",
                         runs(lambda: peer_rpc(bindir, proto, calls))))
    best99 = min(r[2][0] for r in lrows[first_peer:])
    print(f"\n{'latency (us), sequential calls':34} {'p50':>8} {'p99':>8} {'p999':>8} "
          f"{'p99/raw':>8} {'p99/best peer':>13}")
    raw99 = lrows[0][2][0]
    for name, p50, p99, p999 in lrows:
        print(f"{name:34} {p50[0]:8.2f} {p99[0]:8.2f} {p999[0]:8.2f} {p99[0] / raw99:8.2f} "
              f"{p99[0] / best99:13.2f}")
    # a brokered round trip is two ping-pongs: the bound is twice the raw one
    raw50 = lrows[0][1][0]
    for i in (2, first_peer - 1):
        name, p50, p99, _ = lrows[i]
        print(f"  {name}: p50 {p50[0] / (2 * raw50):.2f} x (2 x raw p50), "
              f"p99 {p99[0] / (2 * raw99):.2f} x (2 x raw p99)  (goals 1.1, 1.5)")

    stage("the bridge: busrtd -> busrt-bridge -> JetStream")
    nb = max(n // 5, 100000)  # the drain's 100 ms tick is noise below that
    alone = runs(lambda: pubsub(bindir, False, 1, 1, "bench/#", nb))
    viaj = runs(lambda: bridge_run(bindir, nb))
    bound = runs(lambda: js_bound(bindir, nb))
    a_m = med([r["rate"] for r in alone])[0]
    b_m = med(bound)[0]
    j_m, j_lo, j_hi = med([r["rate"] for r in viaj])
    print(f"\nthe bridge to NATS JetStream ({nb} frames, file storage, a PubAck each; "
          f"stored/s from the first publish to the last PubAck):")
    print(f"  busrtd alone 1->1 (this run)       {a_m / 1e6:7.3f} M/s")
    print(f"  busrtd -> busrt-bridge -> stream   {j_m / 1e6:7.3f} M/s {j_lo / 1e6:.3f}-"
          f"{j_hi / 1e6:.3f}  lost {sum(r['lost'] for r in viaj)}  "
          f"/alone {j_m / a_m:.3f}  /JetStream bound {j_m / b_m:.3f}  "
          f"re-sent {sum(r['resent'] for r in viaj)}")
    print(f"  libnats async to JetStream, ids    {b_m / 1e6:7.3f} M/s  (the bound: no broker, "
          f"no bridge)")

    print("\nRSS (VmRSS), 48 idle socket clients registered (the embedded defaults keep 9 of 64 places for the agent and collectors):")
    emb_rss = None
    stage("memory: idle clients' RSS")
    for label, emb in (("embedded broker (busrt-demo)", True), ("busrtd", False)):
        base, full, idle_pct = idle_rss(bindir, emb)
        emb_rss = emb_rss or base
        print(f"  {label:30} {full:6d} kB  ({base} kB before the clients); CPU while "
              f"they idle {idle_pct:.2f} % of one core")

    stage("BUS/RT's benchmark stages on one connection per worker")
    iters, breps = (20000, reps) if a.quick else (50000, min(reps, 3))
    print(f"\nbusrt-cli benchmark (BUS/RT's stages), busrtd at its defaults, {iters} "
          f"iterations, 100-byte payloads, iterations/s, median of {breps} (min-max):")
    bs = {w: [busrt_style(bindir, w, iters) for _ in range(breps)] for w in (1, 8)}
    for st in bs[1][0]:
        cells = []
        for w in (1, 8):
            m, lo, hi = med([r[st] for r in bs[w]])
            cells.append(f"{w} worker{'s' if w > 1 else ' '} {m:>11,.0f} ({lo:,.0f}-{hi:,.0f})")
        print(f"  {st:26} " + "   ".join(cells))

    print_scale(bindir, calls, max(reps, 3))

    stage("DaemonEye: procmond, health checks, the agent")
    de = daemoneye(bindir, calls, 200000 if a.quick else 2000000, 3 if a.quick else 10, reps)
    pub11 = med([r["rate"] for r in runs(lambda: pubsub(bindir, False, 1, 1, "bench/#", n))])[0]
    echo = med([r["p99_us"] for r in runs(lambda: rpc(bindir, False, calls))])[0]
    c_m, c_lo, c_hi = med(de["collector"])
    print("\nDaemonEye (busrtd over a Unix socket unless said):")
    print(f"  procmond's collector code, 1000 processes changing per cycle: {c_m:,.0f} events/s "
          f"({c_lo:,.0f}-{c_hi:,.0f}; design target > 10,000; {c_m / pub11:.3f} x raw 1->1 publish "
          f"of this run, {pub11:,.0f}/s)")
    hp50 = med([r["p50_us"] for r in de["health"]])[0]
    hp99 = med([r["p99_us"] for r in de["health"]])[0]
    print(f"  health.check round trip to procmond: p50 {hp50:.1f} us, p99 {hp99:.1f} us "
          f"(design < 10 ms; p99 {hp99 / echo:.2f} x the echo RPC of this run)")
    cpu, rss, hwm, secs = de["procmond"]
    print(f"  procmond at the default 1 s interval, hashing on, {secs:.0f} s: CPU {cpu:.2f} % of one "
          f"core, RSS {rss} kB (peak {hwm} kB)")
    arss, ahwm = de["agent"]
    print(f"  daemoneye-agent with the embedded broker and one procmond: RSS {arss} kB "
          f"(peak {ahwm} kB; design < 50 MB; {arss / emb_rss:.2f} x the bare embedded broker)")
    nb = 500 if a.quick else 2000
    stage("DaemonEye: the burst")
    b = burst(bindir, nb, 4096)
    print(f"  the burst: {nb} processes with 4 KiB command lines started over "
          f"{b['spawn_s']:.2f} s (procmond scans every 1 s): {b['reported']} of {nb} "
          f"reported; {b['events_per_s']:,.0f} DISCOVERYs/s; delay from start to the "
          f"event p50 {b['p50_s'] * 1e3:.0f} ms, worst {b['worst_s'] * 1e3:.0f} ms; the "
          f"agent's stream: {b['agent_events']} events in sequence, {b['agent_gaps']} gaps, "
          f"{b['agent_processes']} processes in its view")
    return print_sim(bindir, a.quick, reps)


def print_scale(bindir, calls, reps):
    stage("scale: 10,000 idle connections")
    r = scale(bindir, 10000, calls, reps)
    n = r["conns"]
    per = (r["rss_kb"] - r["base_kb"]) * 1024 / n
    a50, a_lo, a_hi = med([x["p50_us"] for x in r["alone"]])
    m50, m_lo, m_hi = med([x["p50_us"] for x in r["among"]])
    a99 = med([x["p99_us"] for x in r["alone"]])[0]
    m99 = med([x["p99_us"] for x in r["among"]])[0]
    print(f"\nbusrtd with {n:,} idle registered clients (max_connections raised; "
          f"each pings every 2 s):")
    print(f"  RSS {r['rss_kb']:,} kB ({r['base_kb']:,} kB before them): "
          f"{per:,.0f} bytes per idle connection; {n:,} connected in "
          f"{r['connect_s']:.1f} s; busrtd's CPU while they idle "
          f"{r['idle_cpu_pct']:.2f} % of one core")
    print(f"  RPC round trip between two other clients: p50 {m50:.1f} us among "
          f"them ({m_lo:.1f}-{m_hi:.1f}), {a50:.1f} us without them ({a_lo:.1f}-{a_hi:.1f}): "
          f"{m50 / a50:.2f} x; p99 {m99:.1f} / {a99:.1f} us ({m99 / a99:.2f} x); "
          f"idle clients still registered after: {r['alive']:,} of {n:,}")
    return 0


def print_sim(bindir, quick, reps):
    seeds = 30 if quick else 300
    stage("the simulator: deliveries per CPU-second, sweep wall time")
    rates, oracle, walls, faults = simulator(bindir, seeds, reps)
    r_m, r_lo, r_hi = med(rates)
    o_m = med(oracle)[0]
    w_m, w_lo, w_hi = med(walls)
    print(f"\nbusrt-sim (the deterministic simulator):")
    print(f"  simulated deliveries per CPU-second, fault-free rec-burst sweep of {seeds} seeds: "
          f"{r_m:,.0f} ({r_lo:,.0f}-{r_hi:,.0f}; aim > 1,000,000; {r_m / o_m:.3f} x the "
          f"in-process channel on the same events, {o_m:,.0f}/s)")
    print(f"  1,000-seed sweep of the default scenario, 2 jobs: {w_m:.2f} s wall "
          f"({w_lo:.2f}-{w_hi:.2f}); faults injected: {faults}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
