# SPDX-License-Identifier: Apache-2.0
"""A local process must not be able to hide from procmond or fool it: the
executable is judged by the file procmond opened (/proc/PID/exe), not by
the link's text or a timestamp its owner can set back."""
import hashlib
import os
import shutil
import subprocess
import time

import pytest

from busclient import BIN, Busrtd, connect, events

PROCMOND = os.path.join(BIN, "procmond")
SLEEP = shutil.which("sleep")


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Watch:
    """procmond alone on a broker, and a subscriber to its events."""

    def __init__(self, pb, *args):
        self.pb = pb
        self.args = args

    def __enter__(self):
        self.b = Busrtd().__enter__()
        self.w = connect(self.b.path, "test.watch")
        assert self.w.subscribe("events/process/#") == 1
        self.p = subprocess.Popen([PROCMOND, "--connect", self.b.path, "--id", "h",
                                   "--interval-ms", "50", *self.args],
                                  stderr=subprocess.DEVNULL)
        return self

    def discovery(self, pid, seconds=10):
        """The first DISCOVERY of pid."""
        for e in events(self.pb, self.w, seconds):
            pe = e.process_event
            if pe.event_type == self.pb.ProcessEvent.DISCOVERY and pe.process.pid == pid:
                return pe.process
        raise AssertionError(f"no discovery of {pid}")

    def __exit__(self, *a):
        self.p.terminate()
        self.p.wait(timeout=10)
        self.w.close()
        self.b.__exit__(None, None, None)


def run(path):
    return subprocess.Popen([path, "30"])


def test_deleted_is_decided_by_the_opened_file(pb, tmp_path):
    """A file really named "x (deleted)" was reported as "x", gone and not
    hashed; a deleted executable is now hashed from the open file."""
    named = tmp_path / "x (deleted)"
    shutil.copy(SLEEP, named)
    gone = tmp_path / "gone"
    shutil.copy(SLEEP, gone)
    digest = sha(gone)
    a, b = run(str(named)), run(str(gone))
    try:
        time.sleep(0.1)
        os.unlink(gone)
        with Watch(pb) as w:
            pa = w.discovery(a.pid)
            assert pa.executable_path == str(named)
            assert pa.file_exists and pa.executable_hash == sha(named)
            pb_ = w.discovery(b.pid)
            assert pb_.executable_path == str(gone)
            assert not pb_.file_exists
            assert pb_.executable_hash == digest  # the running file's
    finally:
        a.kill(), b.kill(), a.wait(), b.wait()


def test_hash_cache_cannot_be_fooled_by_utime(pb, tmp_path):
    """Rewritten in place with its mtime set back, a binary was reported
    with its old hash; the cache key now has ctime (not settable)."""
    z = tmp_path / "z"
    shutil.copy(SLEEP, z)
    with Watch(pb) as w:
        p = run(str(z))
        first = w.discovery(p.pid).executable_hash
        p.kill(), p.wait()
        assert first == sha(z)
        st = os.stat(z)
        with open(z, "r+b") as f:  # e_ident padding: the kernel ignores it
            f.seek(10)
            f.write(b"\x5a")
        os.utime(z, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(z).st_mtime_ns == st.st_mtime_ns
        assert os.stat(z).st_size == st.st_size
        p = run(str(z))
        second = w.discovery(p.pid).executable_hash
        p.kill(), p.wait()
    assert second == sha(z) != first


def test_large_executable_is_not_hashed(pb, tmp_path):
    """Past --hash-max-mib the executable is reported, with why its hash
    is missing."""
    big = tmp_path / "big"
    shutil.copy(SLEEP, big)
    with open(big, "ab") as f:
        f.truncate(os.path.getsize(big) + 3 * 1024 * 1024)  # sparse tail
    small = tmp_path / "small"
    shutil.copy(SLEEP, small)
    a, b = run(str(big)), run(str(small))
    try:
        with Watch(pb, "--hash-max-mib", "2") as w:
            pa = w.discovery(a.pid)
            assert pa.executable_hash == "" and pa.hash_skipped == "too_large"
            assert pa.file_exists and pa.executable_path == str(big)
            pb_ = w.discovery(b.pid)
            assert pb_.executable_hash == sha(small) and pb_.hash_skipped == ""
    finally:
        a.kill(), b.kill(), a.wait(), b.wait()


def test_name_taken_is_said_and_backed_off():
    """A second procmond with the same --id said 'disconnected: ;
    reconnecting'; it now names the conflict and retries with backoff."""
    with Busrtd() as b:
        first = subprocess.Popen([PROCMOND, "--connect", b.path, "--id", "dup", "--no-hash"],
                                 stderr=subprocess.DEVNULL)
        try:
            c = connect(b.path, "test.wait")
            for _ in range(100):
                names = [x["name"] for x in c.rpc("client.list")[1]["clients"]]
                if "collector.process.dup" in names:
                    break
                time.sleep(0.02)
            second = subprocess.Popen([PROCMOND, "--connect", b.path, "--id", "dup",
                                       "--no-hash"], stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            second.terminate()
            err = second.communicate(timeout=10)[1]
            lines = [l for l in err.splitlines() if "already registered" in l]
            assert lines, err
            assert lines[0] == ("procmond: collector.process.dup: name already registered; "
                                "trying again"), lines[0]
            assert len(lines) <= 8, len(lines)  # 100 ms doubling: about 4 in 1.5 s
        finally:
            first.terminate()
            first.wait(timeout=10)


def test_names_that_are_not_utf8_are_reported_exactly(pb, tmp_path):
    """comm, the executable's path and arguments went raw into proto3
    strings: a process named with bytes that are not UTF-8 made events no
    conforming decoder accepts, so it was never seen. The strings now
    carry an escaped form and the _raw fields the exact bytes."""
    exe = os.path.join(os.fsencode(tmp_path), b"sl\xff\xfeep")
    shutil.copy(shutil.which("sh"), exe)  # a shell ignores extra arguments
    args = [exe, b"-c", b"sleep 30; :", b"\xc3\x28", b"ok"]
    p = subprocess.Popen(args)
    try:
        with Watch(pb) as w:
            r = w.discovery(p.pid)  # Python's protobuf checks UTF-8: it decodes
            assert r.name_raw == b"sl\xff\xfeep"
            assert r.name == "sl\\xff\\xfeep"
            assert r.executable_path_raw == exe
            assert r.executable_path == os.fsdecode(tmp_path) + "/sl\\xff\\xfeep"
            assert list(r.command_line_raw) == args
            assert list(r.command_line)[1:] == ["-c", "sleep 30; :", "\\xc3(", "ok"]
            assert r.executable_hash == sha(exe)
        # a process whose strings are UTF-8 carries no _raw fields
        with Watch(pb) as w:
            q = subprocess.Popen([SLEEP, "30"])
            try:
                r = w.discovery(q.pid)
                assert r.name_raw == b"" and r.executable_path_raw == b""
                assert len(r.command_line_raw) == 0
            finally:
                q.kill(), q.wait()
    finally:
        p.kill(), p.wait()


def test_hashing_does_not_stall_the_loop(pb, tmp_path):
    """Whole files were hashed inside procmond's loop: big executables made
    its heartbeats fail. Hashing is on libuv's work queue now, within a
    per-cycle budget (the rest next cycle): health checks are answered
    while it hashes, and every executable gets its hash in the end."""
    procs, digests = [], {}
    for k in range(24):  # 24 x 60 MiB: far over one cycle's 256 MiB
        exe = tmp_path / f"big{k}"
        shutil.copy(SLEEP, exe)
        with open(exe, "ab") as f:
            f.write(bytes([k]) * 64)  # each file its own hash
            f.truncate(60 * 1024 * 1024)
        digests[str(exe)] = sha(exe)
    try:
        procs = [run(str(tmp_path / f"big{k}")) for k in range(24)]
        with Busrtd() as b:
            pm = subprocess.Popen([PROCMOND, "--connect", b.path, "--id", "hb",
                                   "--interval-ms", "50"], stderr=subprocess.DEVNULL)
            try:
                c = connect(b.path, "test.hc")
                req = pb.HealthCheckRequest(collector_id="hb").SerializeToString()
                answered = 0
                for _ in range(200):  # registered?
                    names = [x["name"] for x in c.rpc("client.list")[1]["clients"]]
                    if "collector.process.hb" in names:
                        break
                    time.sleep(0.01)
                m = connect(b.path, "monitor.hc")  # health.*: agent, monitors
                for _ in range(6):  # while the first cycles hash
                    r = m.rpc("health.check", req, target="collector.process.hb",
                              timeout=0.5)
                    answered += r[0] == "reply"
                m.close()
                assert answered == 6
                assert c.subscribe("events/process/#") == 1
                c.close()
            finally:
                pm.terminate()
                pm.wait(timeout=20)
        # and the hashes came, a cycle or a few later
        with Watch(pb) as w:
            got = {}
            for e in events(pb, w.w, 20):
                r = e.process_event.process
                if r.executable_path in digests and r.executable_hash:
                    got[r.executable_path] = r.executable_hash
                    if len(got) == 24:
                        break
            assert got == digests
    finally:
        for p in procs:
            p.kill()
            p.wait()
