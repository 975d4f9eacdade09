# SPDX-License-Identifier: Apache-2.0
"""busrt-sim's command line against the real binary: reports, bad input,
recording, saved failures. (The simulator's own proofs — scenarios,
determinism, sweeps, planted bugs, the ledger — run in make test's sim
stage, scripts/sim-test.sh.)"""
import json
import os
import resource
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
                 ["run", "default", "--plant", "gremlin"], ["record", "--poll-ms", "0"]):
        p = sim(*args)
        assert p.returncode == 2 and "usage" in p.stderr, (args, p.stderr)


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
