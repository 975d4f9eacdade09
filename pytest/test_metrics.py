# SPDX-License-Identifier: Apache-2.0
"""The broker's observability over real sockets: control/broker/stats on its
schedule, the .broker methods topic.stats and diagnostics, control/broker
refused to clients, and the Prometheus endpoint (broker.metrics.listen)
scraped over HTTP and read by prometheus_client's own parser."""
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from busclient import ACCESS as ACCESS_DENIED, BIN, BUSRTD, OK, Busrtd, free_port

CLI = os.path.join(BIN, "busrt-cli")  # this run's build (make asan: ASan's)

OPEN = "broker:\n  acl: open\n"
STATS = OPEN + "  stats_interval_ms: 200\n"


def stats_frames(c, n, timeout=5.0):
    """The next n control/broker/stats payloads, unpacked."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        f = c.read_frame(timeout=max(0.1, deadline - time.monotonic()))
        if f[0] == "publish" and f[2] == "control/broker/stats":
            out.append(msgpack.unpackb(f[3], raw=False))
    return out


def row(table, topic):
    return next((r for r in table["topics"] if r["topic"] == topic), None)


def test_stats_published_on_schedule_and_consistent():
    with Busrtd(config=STATS) as b:
        sub = b.client("py.stats")
        assert sub.subscribe("control/broker/stats") == OK
        recv = b.client("py.recv")
        assert recv.subscribe("events/process/#") == OK
        pub = b.client("py.pub")
        for i in range(7):
            assert pub.publish("events/process/lifecycle/exec", b"x" * 10) == OK
        for _ in range(7):
            assert recv.read_frame()[3] == b"x" * 10
        # every frame within the bound: at least 3 in 5 s at 200 ms
        got = stats_frames(sub, 3)
        assert len(got) == 3, got
        last = got[-1]
        for key in ("uptime", "r_frames", "w_frames", "queued_bytes",
                    "memory_bytes", "clients", "limits", "topic_stats"):
            assert key in last, key
        assert last["clients"] == 3 and last["memory_bytes"] > 0
        # the counters only grow from one publication to the next
        for a, z in zip(got, got[1:]):
            assert z["r_frames"] >= a["r_frames"] and z["w_frames"] >= a["w_frames"]
        ts = last["topic_stats"]
        assert ts["depth"] == 3
        r = row(ts, "events/process/lifecycle")
        assert r == {"topic": "events/process/lifecycle", "frames_in": 7,
                     "bytes_in": 70, "frames_out": 7, "bytes_out": 70,
                     "drops": 0, "subscribers": 1}, ts
        # the stats subscriber's own deliveries are counted under their prefix
        assert row(ts, "control/broker/stats")["frames_out"] >= 2


def test_stats_off_by_default_interval_zero():
    with Busrtd(config=OPEN + "  stats_interval_ms: 0\n") as b:
        sub = b.client("py.stats")
        assert sub.subscribe("control/broker/stats") == OK
        sub.expect_nothing(0.6)


@pytest.fixture
def broker():
    with Busrtd(config=OPEN) as b:
        yield b


def test_topic_stats_and_diagnostics_methods(broker):
    pub = broker.client("py.pub")
    slow = broker.client("py.slow")
    assert slow.subscribe("a/b/#") == OK
    for _ in range(3):
        assert pub.publish("a/b/c/d", b"12345") == OK
    kind, ts, _ = pub.rpc("topic.stats")
    assert kind == "reply"
    r = row(ts, "a/b/c")
    assert r["frames_in"] == 3 and r["bytes_in"] == 15 and r["subscribers"] == 1
    assert set(ts) == {"depth", "rows_max", "topics", "other"}
    # a refusal is remembered: a client may not publish under control/broker
    assert pub.publish("control/broker/stats", b"forged") == ACCESS_DENIED
    kind, d, _ = pub.rpc("diagnostics")
    assert kind == "reply"
    assert set(d) == {"slowest", "largest", "paused", "denials"}
    # queues the socket took are empty: whatever is listed is well formed
    for q in d["largest"] + d["slowest"]:
        assert set(q) == {"name", "queued_frames", "queued_bytes", "stalled_ms"}
    assert any(x["who"] == "py.pub" and "control/broker" in (x["object"] or "")
               for x in d["denials"]), d["denials"]
    kind, code, msg = pub.rpc("no.such.method")
    assert kind == "error"


def test_cli_topics_and_diagnostics(broker):
    pub = broker.client("py.pub")
    assert pub.publish("x/y", b"1") == OK
    p = subprocess.run([CLI, "-s", broker.path, "broker", "topics"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["topic", "frames_in", "bytes_in", "frames_out",
                                "bytes_out", "drops", "subscribers"]
    assert any(l.split()[:3] == ["x/y", "1", "1"] for l in lines[1:]), p.stdout
    assert lines[-1].split()[0] == "(other)"
    p = subprocess.run([CLI, "-s", broker.path, "broker", "diagnostics"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0 and '"denials"' in p.stdout


# ---- Prometheus ------------------------------------------------------------
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$')


def check_exposition(text):
    """The text format's rules, line by line: HELP and TYPE once per family
    and before its samples, valid names, counters ending in _total, no
    sample twice. Returns {family: type}."""
    types, helps, seen = {}, set(), set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert NAME.match(name) and name not in helps, line
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name in helps and name not in types, line
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped")
            if typ == "counter":
                assert name.endswith("_total"), name
            types[name] = typ
        else:
            m = SAMPLE.match(line)
            assert m, line
            name = m.group(1)
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in types or fam in types, line
            assert (name, m.group(2)) not in seen, line
            seen.add((name, m.group(2)))
    return types


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def test_prometheus_endpoint_and_cli_print_the_same_families():
    port = free_port()
    with Busrtd("--metrics", f"127.0.0.1:{port}", config=OPEN) as b:
        pub = b.client("py.pub")
        sub = b.client("py.sub")
        assert sub.subscribe("events/#") == OK
        for _ in range(5):
            assert pub.publish("events/process/lifecycle/start", b"abc") == OK
        status, ctype, text = scrape(port)
        assert status == 200
        assert ctype == "text/plain; version=0.0.4; charset=utf-8"
        types = check_exposition(text)
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        # the parser drops _total from counter names
        assert fams["busrt_broker_r_frames"].type == "counter"
        assert fams["busrt_broker_clients"].type == "gauge"
        assert fams["busrt_broker_uptime_seconds"].type == "gauge"
        assert fams["busrt_broker_queued_bytes"].type == "gauge"
        clients = fams["busrt_broker_clients"].samples[0].value
        assert clients == 2
        fin = {s.labels.get("topic"): s.value
               for s in fams["busrt_topic_frames_in"].samples}
        assert fin["events/process/lifecycle"] == 5
        assert {s.labels.get("overflow") for s in fams["busrt_topic_frames_in"].samples} >= {"true"}
        lim = {s.labels["limit"]: s.value for s in fams["busrt_broker_limit"].samples}
        assert lim["payload_bytes_max"] > 0
        status, _, text2 = scrape(port)
        assert "busrt_metrics_scrapes_total 2" in text2
        # the CLI prints the same families from .broker stats + topic.stats
        p = subprocess.run([CLI, "-s", b.path, "broker", "stats", "--prometheus"],
                           capture_output=True, text=True, timeout=15)
        assert p.returncode == 0, p.stderr
        cli_types = check_exposition(p.stdout)
        assert set(types) - set(cli_types) == {"busrt_metrics_scrapes_total"}
        assert set(cli_types) <= set(types)
        # other paths and methods are refused, the endpoint lives on
        with pytest.raises(urllib.error.HTTPError) as e:
            scrape(port, "/")
        assert e.value.code == 404
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     data=b"x" * 100, method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        assert e.value.code == 405
        assert scrape(port)[0] == 200
    # the shutdown closed it
    with pytest.raises(OSError):
        scrape(port)


def test_prometheus_from_the_config_file():
    port = free_port()
    cfg = f"broker:\n  metrics:\n    listen: 127.0.0.1:{port}\n"
    with Busrtd(config=cfg):
        assert scrape(port)[0] == 200


@pytest.mark.parametrize("spec", ["0.0.0.0:9464", "10.1.2.3:9464", "/tmp/x.sock",
                                  "example.com:80", "127.0.0.1:99999"])
def test_metrics_refuses_what_is_not_loopback(spec, tmp_path):
    p = subprocess.run([BUSRTD, "-B", str(tmp_path / "s"), "--metrics", spec],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 2 and "--metrics" in p.stderr and spec in p.stderr, p.stderr
    cfg = tmp_path / "b.yaml"
    cfg.write_text(f"broker:\n  metrics:\n    listen: '{spec}'\n")
    p = subprocess.run([BUSRTD, "-B", str(tmp_path / "s"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 2 and f"{cfg}:3" in p.stderr and "listen" in p.stderr, p.stderr


def test_metrics_port_in_use_is_an_error(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = subprocess.run([BUSRTD, "-B", str(tmp_path / "s"), "--metrics",
                            f"127.0.0.1:{port}"], capture_output=True, text=True,
                           timeout=15)
        assert p.returncode == 1 and "cannot listen" in p.stderr, p.stderr
    finally:
        s.close()


# ---- the agent: RPC metrics and collectors on its embedded broker's page ----
def test_agent_rpc_metrics_in_status_prometheus_and_health(pb):
    from test_daemoneye import Agent, wait_for
    port = free_port()
    a = Agent("embedded", pb, broker_extra=f"  metrics:\n    listen: 127.0.0.1:{port}\n",
              agent_extra="  status_interval_ms: 200\n")
    with a:
        target = "collector.process.p1"
        # control/agent/status: the agent's lifecycle.status, on a schedule
        from busclient import connect
        mon = connect(a.sock, "monitor.status")
        assert mon.subscribe("control/agent/status") == OK
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            f = mon.read_frame(timeout=5)
            if f[0] == "publish" and f[2] == "control/agent/status":
                assert f[1] == "daemoneye-agent"
                seen.append(pb.CollectorStatusResponse.FromString(f[3]))
        assert len(seen) == 2
        states = {c.collector_id: c.state for c in seen[-1].collectors}
        assert states["p1"] == pb.CollectorStatus.RUNNING
        assert states["spare"] != pb.CollectorStatus.RUNNING
        mon.close()

        def heartbeats():
            r = a.call("daemoneye-agent", "lifecycle.status", pb.CollectorStatusRequest())
            m = dict(pb.CollectorStatusResponse.FromString(r[2]).rpc_metrics)
            return m if m.get(f"rpc.{target}.health.heartbeat.ok", 0) >= 3 else None
        m = wait_for(heartbeats, what="three heartbeats answered")
        hb = f"rpc.{target}.health.heartbeat"
        assert m[hb + ".calls"] >= m[hb + ".ok"] >= 3
        assert 0 < m[hb + ".p50_ms"] <= m[hb + ".p99_ms"] <= m[hb + ".p999_ms"]
        status, _, text = scrape(port)
        assert status == 200
        check_exposition(text)
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        calls = {(s.labels["target"], s.labels["method"]): s.value
                 for s in fams["busrt_rpc_calls"].samples}
        assert calls[(target, "health.heartbeat")] >= 3
        # the histogram: cumulative buckets, +Inf equal to the count
        lat = [s for s in fams["busrt_rpc_latency_seconds"].samples
               if s.labels.get("method") == "health.heartbeat"]
        buckets = [(float(s.labels["le"]), s.value) for s in lat
                   if s.name.endswith("_bucket")]
        count = next(s.value for s in lat if s.name.endswith("_count"))
        assert buckets == sorted(buckets) and buckets[-1] == (float("inf"), count)
        assert all(b[1] <= c[1] for b, c in zip(buckets, buckets[1:]))
        up = {s.labels["collector"]: s.value for s in fams["busrt_collector_up"].samples}
        assert up == {"p1": 1, "spare": 0}
        assert fams["busrt_broker_clients"].samples[0].value >= 2
        # a collector's health.metrics carries its figures (and its own
        # calls' rpc.* rows when it makes any)
        r = a.call(target, "health.metrics", pb.MetricsRequest(collector_id="p1"))
        assert r[0] == "reply", r
        hm = dict(pb.MetricsResponse.FromString(r[2]).metrics)
        assert {"cycles", "events", "retained"} <= set(hm)
