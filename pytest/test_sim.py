# SPDX-License-Identifier: Apache-2.0
"""busrt-sim's command line against the real binary: reports, bad input,
recording, saved failures. (The simulator's own proofs — scenarios,
determinism, sweeps, planted bugs, the ledger — run in make test's sim
stage, scripts/sim-test.sh.)"""
import json
import os
import resource
import shutil
import subprocess

from busclient import BIN

SIM = os.path.join(BIN, "busrt-sim")
ROOT = os.path.join(os.path.dirname(__file__), "..")


def sim(*args, timeout=120):
    return subprocess.run([SIM, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_json_report_and_plan():
    p = sim("run", "default", "--seed", "3", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["ok"] and r["seed"] == 3 and len(r["trace_hash"]) == 16
    assert set(r["checks"]) == {"ordering", "lifecycle", "delivery", "equivalence",
                                "liveness", "accounting", "stream", "convergence",
                                "access", "invariants", "control"}
    assert r["access_denied"] >= 6  # the intruder's tries and the impostor's
    assert r["invariant_checks"] > 1000  # a run checks after every step
    assert r["end_to_end_checked"] and r["processed"] > 0
    assert r["delivered"] == r["oracle_delivered"] or sum(r["faults"].values()) > 0
    plan = sim("plan", "default", "--seed", "3")
    assert plan.returncode == 0 and plan.stdout.startswith("version: 1\nfaults:")
    # the same seed, the same trace
    assert json.loads(sim("run", "default", "--seed", "3", "--json").stdout)["trace_hash"] \
        == r["trace_hash"]


def test_bad_input_exits_2_and_says_where(tmp_path):
    p = sim("run", "scenarios/nope.yaml")
    assert p.returncode == 2 and "scenarios/nope.yaml" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nduration_ms: 10\ncolour: red\n")
    p = sim("run", str(bad))
    assert p.returncode == 2 and f"{bad}:4: colour: unknown key" in p.stderr, p.stderr
    bad.write_text("version: 1\nname: q\ncollectors:\n  - id: p1\n    qos: fast\n")
    p = sim("run", str(bad))
    assert p.returncode == 2 and f"{bad}:5: qos: none, processed" in p.stderr, p.stderr
    bad.write_text("version: 1\nfaults:\n  - {at_ms: 5, kind: meteor}\n")
    p = sim("run", "default", "--faults", str(bad))
    assert p.returncode == 2 and "unknown fault kind" in p.stderr
    # what a scenario may cost: nesting, and its tables' changes as held
    bad.write_text("a: " + "[" * 13 + "]" * 13 + "\n")
    p = sim("run", str(bad))
    assert p.returncode == 2 and f"{bad}:1: nested deeper than 12 levels" in p.stderr, p.stderr
    head = ("version: 1\nname: big\nduration_ms: 100\ncollectors:\n  - id: p1\n"
            "    poll_ms: 100\n    table:\n      - at_ms: 0\n        add:\n")
    # 3,000 processes over 1,200 polls: a table copy per poll (3.6 million
    # entries) was refused, and 300 polls took 123 MB; one replayed table
    # takes a few
    rows = "".join(f"          - [{1000 + i}, 1, 1, 0, p, /p, p]\n" for i in range(3000))
    polls = "".join(f"      - {{at_ms: {t}}}\n" for t in range(1, 1200))
    bad.write_text(head + rows + polls)
    def data_64mib():  # heap and private mappings: the tables' memory
        if not os.environ.get("BUSRT_ASAN"):  # its shadow maps terabytes
            resource.setrlimit(resource.RLIMIT_DATA, (64 << 20, 64 << 20))
    p = subprocess.run([SIM, "run", str(bad), "--faults", "none"], cwd=ROOT, text=True,
                       capture_output=True, timeout=120, preexec_fn=data_64mib)
    assert p.returncode == 0, p.stderr
    # changes are capped: an alias counts its list at every poll naming it
    sets = ", ".join(f"[{1000 + i}, 1, uid, 7]" for i in range(1000))
    polls = f"      - {{at_ms: 1, set: &s [{sets}]}}\n" + \
        "".join(f"      - {{at_ms: {t}, set: *s}}\n" for t in range(2, 1002))
    rows = "".join(f"          - [{1000 + i}, 1, 1, 0, p, /p, p]\n" for i in range(1000))
    bad.write_text(head + rows + polls)
    p = sim("run", str(bad))
    assert p.returncode == 2 and "the tables change more than 1,000,000 times" in p.stderr, \
        p.stderr
    # a process's text that is not UTF-8 is written !bytes '...' (\xNN)
    table = ("version: 1\nname: b\nduration_ms: 100\ncollectors:\n  - id: p1\n"
             "    poll_ms: 100\n    table:\n      - at_ms: 0\n        add:\n"
             "          - [5, 1, 1, 0, !bytes '%s', /x, x]\n")
    for val, why in (("a\\q", "!bytes: \\xNN (not 00)"), ("a\\x00", "!bytes"),
                     ("a\\xg1", "!bytes")):
        bad.write_text(table % val)
        p = sim("run", str(bad))
        assert p.returncode == 2 and f"{bad}:10: add.name: {why}" in p.stderr, p.stderr
    bad.write_text(table % "ok\\xff\\\\")
    assert sim("run", str(bad), "--faults", "none").returncode == 0
    bad.write_text("# padding\n" * (900 * 1024))
    p = sim("run", str(bad))
    assert p.returncode == 2 and "of at most 8 MiB" in p.stderr, p.stderr
    for args in (["run", "default", "--seed", "x"], ["sweep", "default"],
                 ["sweep", "default", "--seeds", "5..1"], ["run"], ["fly", "default"],
                 ["record", "--poll-ms", "0"]):
        p = sim(*args)
        assert p.returncode == 2 and "usage" in p.stderr, (args, p.stderr)
    # each says what was wrong, and what is right
    for args, msg in (
            (["fly", "default"], "unknown command (run, sweep, merge, ledger, plan, replay, "
                                 "shrink, report, record): fly"),
            (["sweep", "default", "--seeds", "1..4", "--shard", "0/4"],
             "--shard: expected K/N (1 <= K <= N): 0/4"),
            (["run", "default", "--shard", "1/2"], "--shard goes with sweep"),
            (["merge"], "merge needs the shards' results"),
            (["run"], "missing SCENARIO (or FILE): run"),
            (["run", "a", "b"], "expected one SCENARIO, got more: b"),
            (["run", "default", "--plant", "gremlin"], "--plant: gremlin: not one of: dup, "),
            (["run", "default", "--buggify", "x.y"], "--buggify: x.y: expected none, all, "
                                                     "seed or sites of: core.alloc,"),
            (["run", "default", "--junit", "j.xml"], "--junit goes with sweep"),
            (["run", "default", "--save-dir", "d"], "--save-dir goes with sweep"),
            (["run", "nosuch"], "nosuch: no such file, nor a scenario of that name")):
        p = sim(*args)
        assert p.returncode == 2 and msg in p.stderr, (args, p.stderr)
    h = sim("--help")
    assert h.returncode == 0 and "--buggify none|all|seed|SITE" in h.stdout
    assert "shutdown-waits" in h.stdout and "--junit FILE" in h.stdout


def test_plan_names_the_fields_each_kind_has():
    """A crash is down for down_ms; ms is the delay's alone (as
    scenarios/README.md documents them, and plan files take them)."""
    seen = set()
    for seed in range(1, 60):
        for line in sim("plan", "default", "--seed", str(seed)).stdout.splitlines()[2:]:
            kind = line.split("kind: ")[1].split(",")[0].rstrip("}")
            seen.add(kind)
            if kind in ("broker_crash", "agent_crash"):
                assert "down_ms: " in line and "for_ms" not in line, line
            if kind != "delay":
                assert " ms: " not in line, line
    assert {"broker_crash", "delay"} <= seen, seen


def test_sweep_json_junit_and_save_dir(tmp_path):
    import xml.etree.ElementTree as ET
    save = tmp_path / "not" / "yet"  # created, parents too
    junit = tmp_path / "sweep.xml"
    p = sim("sweep", "default", "--seeds", "1..3", "--plant", "dup", "--topology",
            "standalone", "--json", "--junit", str(junit), "--save-dir", str(save))
    assert p.returncode == 1, p.stderr
    r = json.loads(p.stdout)
    assert (r["scenario"], r["topology"], r["runs"], r["failed"]) == (
        "default", "standalone", 3, 3), r
    assert r["seeds"] == {"from": 1, "to": 3} and r["planted"]["bug"] == "dup"
    assert [x["seed"] for x in r["results"]] == [1, 2, 3]
    assert all(not x["ok"] and len(x["trace_hash"]) == 16 for x in r["results"])
    assert set(r["sites"]["core.alloc"]) == {"armed", "fired", "reached"}
    for f in r["failures"]:
        assert "duplicated" in f["why"] and os.path.exists(f["saved"]), f
        assert "--topology standalone" in f["replay"], f
    # the replay command a failure carries reproduces it
    replay = r["failures"][0]["replay"].split()
    assert replay[0] == "busrt-sim"
    again = sim(*replay[1:], "--json")
    assert again.returncode == 1 and not json.loads(again.stdout)["ok"]
    assert json.loads(again.stdout)["trace_hash"] == r["results"][0]["trace_hash"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "busrt-sim.default.standalone"
    assert (suite.get("tests"), suite.get("failures")) == ("3", "3")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["seed 1", "seed 2", "seed 3"]
    fail = cases[0].find("failure")
    assert "duplicated" in fail.get("message") and "replay: busrt-sim run" in fail.text
    # a passing sweep: no failures, the same shapes
    ok = sim("sweep", "default", "--seeds", "1..2", "--json", "--junit", str(junit))
    assert ok.returncode == 0 and json.loads(ok.stdout)["failures"] == []
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"


def _same_report(text):
    """A sweep's text report without what sharding may change: the wall
    time and the number of jobs."""
    import re
    return re.sub(r"\d+ jobs\): ", "J jobs): ",
                  re.sub(r"[0-9.]+ s wall", "W s wall", text))


def sweep_comparable(doc):
    """A sweep's --json without what sharding may change: times, jobs,
    the shard."""
    d = dict(doc)
    for k in ("wall_s", "jobs", "shard"):
        d.pop(k)
    d["results"] = [{k: v for k, v in r.items() if k != "cpu_s"} for r in d["results"]]
    return d


def test_sharded_sweep_merges_to_the_whole(tmp_path):
    """4 shards of a sweep, merged in any order, give the whole sweep's
    report: text, JSON and JUnit (times aside); a planted bug makes the
    failures, their replay commands and the rate go through too."""
    import xml.etree.ElementTree as ET
    args = ["sweep", "default", "--seeds", "1..24", "--plant", "no-restart"]
    whole = sim(*args, "-j", "2")
    whole_json = sim(*args, "-j", "2", "--json", "--junit", str(tmp_path / "w.xml"))
    assert whole.returncode == whole_json.returncode == 1, whole.stderr
    parts = []
    for k in (3, 1, 4, 2):
        p = sim(*args, "--shard", f"{k}/4", "--json")
        assert p.returncode in (0, 1), p.stderr
        d = json.loads(p.stdout)
        assert d["shard"] == {"k": k, "n": 4}
        assert [r["seed"] for r in d["results"]] == list(range(k, 25, 4))
        f = tmp_path / f"s{k}.json"
        f.write_text(p.stdout)
        parts.append(str(f))
    m = sim("merge", *parts)
    assert m.returncode == 1, m.stderr
    assert _same_report(m.stdout) == _same_report(whole.stdout)
    assert "FAILED seed" in m.stdout and "replay: busrt-sim run" in m.stdout
    mj = sim("merge", *parts, "--json", "--junit", str(tmp_path / "m.xml"))
    assert sweep_comparable(json.loads(mj.stdout)) == sweep_comparable(json.loads(whole_json.stdout))

    def cases(path):
        suite = ET.parse(path).getroot().find("testsuite")
        return [(c.get("name"), c.find("failure") is not None and
                 c.find("failure").get("message")) for c in suite.findall("testcase")]
    assert cases(tmp_path / "m.xml") == cases(tmp_path / "w.xml")
    # a shard missing, or given twice, or another sweep's: said, exit 2
    gone = sim("merge", *parts[:3])
    assert gone.returncode == 2 and "have no result" in gone.stderr, gone.stderr
    twice = sim("merge", *parts, parts[0])
    assert twice.returncode == 2 and "in two results" in twice.stderr, twice.stderr
    other = sim("sweep", "default", "--seeds", "1..24", "--shard", "1/4", "--json")
    (tmp_path / "other.json").write_text(other.stdout)
    mixed = sim("merge", *parts[1:], str(tmp_path / "other.json"))
    assert mixed.returncode == 2 and "another sweep" in mixed.stderr, mixed.stderr
    bad = sim("sweep", "default", "--seeds", "1..4", "--shard", "5/4")
    assert bad.returncode == 2 and "--shard" in bad.stderr
    # a whole sweep that passes merges to exit 0
    ok = sim("sweep", "default", "--seeds", "1..6", "--shard", "1/1", "--json")
    (tmp_path / "ok.json").write_text(ok.stdout)
    assert sim("merge", str(tmp_path / "ok.json")).returncode == 0


def test_ledger_keeps_one_per_check_and_shrunk_plan(tmp_path):
    """Three seeds of one planted duplicate shrink to one plan failing one
    check: the ledger keeps one file, says the others are there, and the
    file kept still fails on replay; a file that passes is not added."""
    saved = tmp_path / "saved"
    p = sim("sweep", "default", "--seeds", "1..3", "--plant", "dup", "--topology",
            "standalone", "--save-dir", str(saved))
    assert p.returncode == 1, p.stderr
    files = sorted(str(f) for f in saved.glob("*.yaml"))
    assert len(files) == 3
    led = tmp_path / "ledger"
    p = sim("ledger", "add", *files, "--dir", str(led), timeout=300)
    assert p.returncode == 0, p.stderr
    kept = sorted(led.glob("*.yaml"))
    assert len(kept) == 1 and kept[0].name.startswith("delivery-"), kept
    assert p.stdout.count("added as") == 1 and p.stdout.count("already there") == 2
    assert not list(led.glob(".adding-*"))
    again = sim("replay", str(kept[0]))
    assert again.returncode == 1 and "duplicated" in again.stdout
    # added again: nothing new
    p = sim("ledger", "add", files[0], "--dir", str(led), timeout=120)
    assert p.returncode == 0 and "already there" in p.stdout
    assert len(list(led.glob("*.yaml"))) == 1
    # a saved run that passes has nothing to add
    p = sim("ledger", "add", "scenarios/regress/overlapping-broker-crashes.yaml", "--dir",
            str(led))
    assert p.returncode == 1 and "does not fail: not added" in p.stderr, p.stderr
    p = sim("ledger", "remove", files[0])
    assert p.returncode == 2 and "ledger add FILE" in p.stderr


def test_a_failure_that_cannot_be_saved_fails_the_command(tmp_path):
    # run --save into a missing directory: said, no replay line, exit 2
    p = sim("run", "default", "--plant", "dup", "--save", str(tmp_path / "no" / "f.yaml"))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "could not be saved" in p.stderr and "replay:" not in p.stdout, p.stdout
    # sweep: a save that fails (a directory where the file goes) is exit 2
    d = tmp_path / "sd"
    (d / "default-embedded-seed-1.yaml").mkdir(parents=True)
    p = sim("sweep", "default", "--seeds", "1..2", "--plant", "dup", "--save-dir", str(d))
    assert p.returncode == 2 and "seed 1: the failure could not be saved" in p.stderr, \
        p.stderr
    assert os.path.exists(d / "default-embedded-seed-2.yaml")
    # a --save-dir that cannot be a directory: before any run
    (tmp_path / "file").write_text("x")
    p = sim("sweep", "default", "--seeds", "1..2", "--save-dir", str(tmp_path / "file" / "x"))
    assert p.returncode == 2 and "Not a directory" in p.stderr and p.stdout == "", p.stderr


def test_scenario_names_from_busrt_scenarios_anywhere(tmp_path):
    env = dict(os.environ, BUSRT_SCENARIOS=os.path.abspath(os.path.join(ROOT, "scenarios")))
    p = subprocess.run([SIM, "plan", "default", "--seed", "3"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == sim("plan", "default", "--seed", "3").stdout
    p = subprocess.run([SIM, "plan", "no-such-scenario", "--seed", "3"], cwd=str(tmp_path),
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no such file, nor a scenario of that name" in p.stderr
    assert env["BUSRT_SCENARIOS"] in p.stderr and "share/busrt/scenarios" in p.stderr


def test_record_replays(tmp_path):
    out = tmp_path / "rec.yaml"
    p = sim("record", "--poll-ms", "10", "--seconds", "5", "--subtree", "--name", "t",
            "--command", "sleep 0.2; sleep 0.1 & wait", "--out", str(out))
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "version: 1" in text and '"sleep"' in text and "del: [[" in text
    p = sim("run", str(out), "--faults", "none")
    assert p.returncode == 0, p.stdout
    assert "deliveries" in p.stdout


def test_record_netlink_sees_processes_shorter_than_a_poll(tmp_path):
    """--netlink: the proc connector's fork/exec/exit events put even
    processes far shorter than the 1 s poll in the recording; polling alone
    sees none of them. Where the connector is not available (no
    CAP_NET_ADMIN, not the initial pid namespace) it must say so, exit 2."""
    work = "for i in 1 2 3 4 5; do /bin/true; done; sleep 0.3"
    out = tmp_path / "nl.yaml"
    p = sim("record", "--netlink", "--poll-ms", "1000", "--seconds", "3", "--subtree",
            "--command", work, "--out", str(out))
    if p.returncode == 2:
        assert "netlink proc connector is not available" in p.stderr, p.stderr
        return
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    adds = [l for l in text.splitlines() if l.startswith("          - [")]
    assert len(adds) >= 6, text  # the shell and its five children
    assert text.count("del: [[") >= 5, text
    assert sim("run", str(out), "--faults", "none").returncode == 0
    polled = tmp_path / "poll.yaml"
    p = sim("record", "--poll-ms", "1000", "--seconds", "3", "--subtree",
            "--command", work, "--out", str(polled))
    assert p.returncode == 0 and '"true"' not in polled.read_text()


def test_saved_failure_replays_and_shrinks(tmp_path):
    saved, small = tmp_path / "f.yaml", tmp_path / "s.yaml"
    # standalone: embedded, the plan's broker crashes reboot the agent,
    # which starts every collector and so masks no-restart
    p = sim("run", "default", "--plant", "no-restart", "--faults",
            "scenarios/plans/twenty-faults.yaml", "--topology", "standalone",
            "--save", str(saved))
    assert p.returncode == 1 and "liveness     FAILED" in p.stdout
    assert f"busrt-sim replay {saved}" in p.stdout
    text = saved.read_text()
    assert "plant: no-restart" in text and "seed: 1" in text
    assert "topology: standalone" in text
    r = sim("replay", str(saved))
    assert r.returncode == 1 and "liveness     FAILED" in r.stdout
    s = sim("shrink", str(saved), "--out", str(small))
    assert s.returncode == 0 and "shrunk 20 faults to" in s.stdout, s.stdout + s.stderr
    assert small.read_text().count("  - {at_ms") <= 3
    assert sim("replay", str(small)).returncode == 1
    # then the scenario: the planted bug needs one collector and no monitor
    assert "3 monitors to 0" in s.stdout and "2 collectors to 1" in s.stdout, s.stdout
    assert "monitors: []" in small.read_text()
    # a shrunk file is a scenario like any other: it shrinks no further
    again = tmp_path / "s2.yaml"
    s2 = sim("shrink", str(small), "--out", str(again))
    assert s2.returncode == 0 and "1 collectors to 1" in s2.stdout, s2.stdout
    assert sim("replay", str(again)).returncode == 1
    # a sweep names and saves each failure with its replay command
    d = tmp_path / "fails"
    d.mkdir()
    w = sim("sweep", "default", "--seeds", "1..4", "--plant", "drop-acked", "--save-dir", str(d))
    assert w.returncode == 1 and "FAILED seed" in w.stdout and "--plant drop-acked" in w.stdout
    assert len(os.listdir(d)) >= 1


def test_policy_losses_are_excused_exactly(tmp_path):
    """The slow-consumer policy's own losses are excused event by event
    (the core reports them in the simulator's build); any other loss still
    fails."""
    text = open(os.path.join(ROOT, "scenarios", "rec-burst.yaml")).read()
    cut = tmp_path / "cut.yaml"
    cut.write_text(text.replace("liveness_ms: 10000\n", "liveness_ms: 10000\nbroker:\n"
                                "  queue_policy: disconnect\n  queue_frames_max: 8\n", 1))
    trace = tmp_path / "t.txt"
    # seed 4: a run whose interleaving overflows monitor.all's 8 frames
    p = sim("run", str(cut), "--faults", "none", "--buggify", "none", "--seed", "4",
            "--topology", "standalone", "--trace", str(trace))
    assert p.returncode == 0, p.stdout
    t = trace.read_text()
    assert "policy cut monitor.all" in t and "policy drop monitor.all" in t
    # drop_newest: the shipped scenario drops at every burst, and passes
    q = sim("run", "drop-newest", "--faults", "none", "--buggify", "none", "--json")
    r = json.loads(q.stdout)
    assert q.returncode == 0 and r["delivered"] < r["oracle_delivered"], q.stdout
    # a loss the policy did not make is still a loss
    q = sim("run", "drop-newest", "--faults", "none", "--plant", "drop-acked")
    assert q.returncode == 1 and "equivalence  FAILED" in q.stdout and \
        "outside every fault window" in q.stdout, q.stdout


def test_embedded_topology_is_one_process(tmp_path):
    """Embedded (the default): the agent's client is internal and a broker
    crash takes the agent with it (and an agent crash the broker); both
    come back together, and every check holds. Standalone: the broker
    outlives the agent."""
    trace = tmp_path / "t.txt"
    p = sim("run", "default", "--faults", "scenarios/plans/broker-crash.yaml",
            "--trace", str(trace))
    assert p.returncode == 0, p.stdout
    assert "scenario default (embedded)" in p.stdout
    t = trace.read_text()
    assert "connect daemoneye-agent (internal)" in t
    crash = t.index("broker crash")
    assert t.index("agent crash", crash) > crash and "agent up" in t[crash:]
    s = tmp_path / "s.txt"
    q = sim("run", "default", "--faults", "scenarios/plans/broker-crash.yaml",
            "--topology", "standalone", "--trace", str(s))
    assert q.returncode == 0 and "scenario default (standalone)" in q.stdout
    u = s.read_text()
    assert "(internal)" not in u and "agent crash" not in u
    bad = sim("run", "default", "--topology", "cluster")
    assert bad.returncode == 2 and "--topology" in bad.stderr


def png_pixels(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB or RGBA PNG, with
    zlib alone (no imaging library in Debian's python3 by default)."""
    import struct
    import zlib
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def test_report_draws_the_failure_and_a_browser_shows_it(tmp_path):
    saved = tmp_path / "fail.yaml"
    p = sim("run", "default", "--seed", "2", "--plant", "dup", "--faults",
            "scenarios/plans/broker-crash.yaml", "--save", str(saved))
    assert p.returncode == 1 and saved.exists(), p.stderr
    html = tmp_path / "fail.html"
    p = sim("report", str(saved), "--html", str(html))
    assert p.returncode == 1, p.stderr  # the run fails; the page is written
    assert f"the timeline is in {html}" in p.stdout, p.stdout
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "first failure: delivery at " in page and "duplicated" in page
    assert f"busrt-sim replay {saved}" in page
    for lane in (">broker<", ">daemoneye-agent<", ">collector.process.p1<", ">monitor.all<"):
        assert lane in page, lane
    assert "broker_crash at " in page  # the plan's fault, as a band
    assert "src=" not in page and "<script" not in page  # self-contained
    # the same run, the same page
    again = tmp_path / "again.html"
    sim("report", str(saved), "--html", str(again))
    assert again.read_bytes() == html.read_bytes()
    # a run that holds: no red line
    ok = tmp_path / "ok.html"
    p = sim("report", "default", "--seed", "3", "--html", str(ok))
    assert p.returncode == 0 and "every check holds" in ok.read_text()
    assert "first failure" not in ok.read_text()
    p = sim("report", str(saved))
    assert p.returncode == 2 and "report needs --html OUT" in p.stderr
    p = sim("report", str(saved), "--html", str(tmp_path / "no" / "x.html"))
    assert p.returncode == 2 and "--html" in p.stderr

    # a real browser renders it: the red marker and the fault band are there
    chromium = shutil.which("chromium")
    assert chromium, "chromium is in ci/deps.sh's test set"
    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'profile'}",
                        "--window-size=1450,1400", f"--screenshot={shot}",
                        f"file://{html}"], capture_output=True, text=True, timeout=120)
    assert shot.exists(), r.stderr
    w, h, rows = png_pixels(shot)
    assert (w, h) == (1450, 1400), (w, h)
    pixels = [px for row in rows for px in row]
    red = sum(1 for (r_, g, b) in pixels if r_ > 190 and g < 40 and b < 40)
    band = sum(1 for (r_, g, b) in pixels if r_ > 230 and 200 < g < 235 and 140 < b < 190)
    assert red > 200, f"the red first-failure line is not on the page ({red} px)"
    assert band > 2000, f"no fault band drawn ({band} px)"
