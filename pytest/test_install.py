# SPDX-License-Identifier: Apache-2.0
"""make install and what it lays down, used as an installed system would
use it: the programs from PREFIX, a program built against libbusrt with
pkg-config (shared and static) talking to the installed busrtd, the
configurations checked by the installed daemons, the systemd units through
systemd-analyze verify, the man pages through man, a DESTDIR staging
install for a package, and make uninstall leaving only the configuration.

It installs this run's build (BUSRT_BIN's tree, O): the programs as they
were built (an ASan build installs ASan programs), the shared library from
its own position-independent objects, compiled here without sanitizers."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from busclient import BIN, Busrtd
from test_tls import make_ca, make_cert

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# the build tree as the Makefile names it: relative to the repository when
# inside it (an absolute O would write its dependency files for other
# target names, and a later make in the tree would miss header changes)
O = os.path.relpath(os.path.dirname(os.path.abspath(BIN)), ROOT)
if O.startswith(".."):
    O = os.path.dirname(os.path.abspath(BIN))
VERSION = re.search(r'#define BUS_VERSION "([^"]+)"',
                    open(os.path.join(ROOT, "broker/include/bus/bus.h")).read()).group(1)
PROGRAMS = {"bin": ["busrt-cli", "busrt-sim", "busrt-bench"],
            "sbin": ["busrtd", "daemoneye-agent", "procmond", "busrt-bridge"]}
MAN = ["man1/busrt-cli.1", "man1/busrt-sim.1", "man1/busrt-bench.1",
       "man8/busrtd.8", "man8/daemoneye-agent.8", "man8/procmond.8",
       "man8/busrt-bridge.8"]


def make(*args, timeout=600):
    """make in the repository as a user runs it: not as a child of the make
    running these tests (its MAKEFLAGS would carry O, SAN and -j)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, f"O={O}",
                        "SAN=", "-j2", *args], env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"make {' '.join(args)}: {r.stdout}{r.stderr}"
    return r.stdout + r.stderr


def files_under(d):
    out = set()
    for root, _, names in os.walk(d):
        for n in names:
            out.add(os.path.relpath(os.path.join(root, n), d))
    return out


@pytest.fixture(scope="module")
def prefix():
    d = tempfile.mkdtemp(prefix="in", dir="/tmp")
    make("install", f"PREFIX={d}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(argv, env=None, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


def test_layout_soname_and_exported_symbols(prefix):
    have = files_under(prefix)
    for kind, names in PROGRAMS.items():
        for n in names:
            assert os.access(os.path.join(prefix, kind, n), os.X_OK), f"{kind}/{n}"
    for f in [f"lib/libbusrt.so.{VERSION}", "lib/libbusrt.a", "lib/pkgconfig/busrt.pc",
              "include/bus/client.h", "include/bus/net.h", "include/bus/daemoneye.pb-c.h",
              "etc/daemoneye/busrtd.yaml", "etc/daemoneye/daemoneye-agent.yaml",
              "lib/systemd/system/busrtd.service",
              "lib/systemd/system/daemoneye-agent.service",
              "lib/systemd/system/busrt-bridge.service",
              "etc/daemoneye/busrt-bridge.yaml",
              "share/doc/busrt/examples/daemoneye-tls.yaml",
              "share/doc/busrt/examples/hello-bus.c",
              "share/doc/busrt/protocol.md", "share/doc/busrt/LICENSE",
              "share/busrt/scenarios/default.yaml",
              "share/busrt/scenarios/plans/broker-crash.yaml",
              "share/bash-completion/completions/busrt-cli",
              "share/bash-completion/completions/busrt-sim"] + [f"share/man/{m}" for m in MAN]:
        assert f in have, f
    assert "busrt-demo" not in " ".join(have)  # the demo stays in the tree
    assert os.readlink(os.path.join(prefix, "lib/libbusrt.so")) == "libbusrt.so.0"
    assert os.readlink(os.path.join(prefix, "lib/libbusrt.so.0")) == f"libbusrt.so.{VERSION}"
    lib = os.path.join(prefix, f"lib/libbusrt.so.{VERSION}")
    dyn = run(["readelf", "-d", lib]).stdout
    assert "Library soname: [libbusrt.so.0]" in dyn, dyn
    syms = run(["nm", "-D", "--defined-only", lib]).stdout.split("\n")
    names = [ln.split()[-1].split("@")[0] for ln in syms if ln.strip()]
    api = [n for n in names if n != "BUSRT_0"]
    assert "bus_client_open" in api and "bus_server_new" in api and "de_agent_shutdown" in api
    wrong = [n for n in api if not re.match(r"(bus_[a-z0-9]|de_|daemoneye__)", n)]
    assert not wrong, f"exported beyond the API: {wrong[:10]}"


def test_every_installed_program_says_its_version(prefix):
    for kind, names in PROGRAMS.items():
        for n in names:
            r = run([os.path.join(prefix, kind, n), "--version"])
            assert r.returncode == 0, (n, r.stdout, r.stderr)
            assert r.stdout.startswith(f"{n} {VERSION}"), (n, r.stdout)


@pytest.mark.parametrize("link", ["shared", "static"])
def test_a_program_built_with_pkg_config_talks_to_the_installed_broker(prefix, link):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib/pkgconfig"))
    flags = ["--cflags", "--libs"] + (["--static"] if link == "static" else [])
    pc = run(["pkg-config", *flags, "busrt"], env=env)
    assert pc.returncode == 0, pc.stderr
    assert run(["pkg-config", "--modversion", "busrt"], env=env).stdout.strip() == VERSION
    out = tempfile.mkdtemp(prefix="hb", dir="/tmp")
    try:
        exe = os.path.join(out, "hello-bus")
        src = os.path.join(prefix, "share/doc/busrt/examples/hello-bus.c")
        argv = ["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra",
                "-Werror", src, "-o", exe]
        if link == "static":
            # libbusrt.a and the system's shared libraries: what busrt.pc
            # says the archive needs beyond its public Requires
            private = run(["pkg-config", "--print-requires-private", "busrt"],
                          env=env).stdout.split()
            assert private, "busrt.pc: no Requires.private"
            libs = run(["pkg-config", "--cflags", "--libs", "busrt", *private], env=env)
            assert libs.returncode == 0, libs.stderr
            argv += [f if f != "-lbusrt" else "-l:libbusrt.a" for f in libs.stdout.split()]
            argv += ["-pthread"]
        else:
            argv += pc.stdout.split()
        r = run(argv, timeout=120)
        assert r.returncode == 0, r.stderr
        needed = run(["readelf", "-d", exe]).stdout
        assert ("libbusrt.so.0" in needed) == (link == "shared"), needed
        runenv = dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib"))
        r = run([exe, os.path.join(out, "nope.sock")], env=runenv)
        assert r.returncode == 1 and "no such file or directory" in r.stderr, r.stderr
        with Busrtd(busrtd=os.path.join(prefix, "sbin/busrtd")) as b:
            r = run([exe, b.path], env=runenv)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello/world from hello-bus: hello from libbusrt\n", r.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_the_installed_configurations_pass_check_config(prefix):
    etc = os.path.join(prefix, "etc/daemoneye")
    r = run([os.path.join(prefix, "sbin/busrtd"), "--config", f"{etc}/busrtd.yaml",
             "--check-config"])
    assert r.returncode == 0 and "the configuration is valid" in r.stdout, r
    agent = os.path.join(prefix, "sbin/daemoneye-agent")
    r = run([agent, "--config", f"{etc}/daemoneye-agent.yaml", "--check-config"])
    assert r.returncode == 0, r
    assert "valid (embedded broker, 1 collector)" in r.stdout, r.stdout
    r = run([os.path.join(prefix, "sbin/busrt-bridge"), "--config",
             f"{etc}/busrt-bridge.yaml", "--check-config"])
    assert r.returncode == 0 and "stream DAEMONEYE" in r.stdout, r
    # the TLS example wants its certificates where it names them
    tls = os.path.join(etc, "tls")
    os.makedirs(tls, exist_ok=True)
    example = os.path.join(prefix, "share/doc/busrt/examples/daemoneye-tls.yaml")
    r = run([agent, "--config", example, "--check-config"])
    assert r.returncode == 2 and f"{tls}/" in r.stderr, r.stderr
    make_ca(tls, "ca")
    make_cert(tls, "ca", "broker", "broker", san="IP:127.0.0.1")
    make_cert(tls, "ca", "agent", "daemoneye-agent")
    r = run([agent, "--config", example, "--check-config"])
    assert r.returncode == 0, r.stderr
    assert "valid (standalone broker, 1 collector)" in r.stdout, r.stdout
    bad = os.path.join(prefix, "bad.yaml")
    with open(bad, "w") as f:
        f.write("broker:\n  queue_policy: sometimes\n")
    for prog in ("busrtd", "daemoneye-agent"):
        r = run([os.path.join(prefix, "sbin", prog), "--config", bad, "--check-config"])
        assert r.returncode == 2, r
        assert r.stdout == "" and f"{bad}:2:" in r.stderr and "queue_policy" in r.stderr, r


def test_systemd_units_verify(prefix):
    units = [os.path.join(prefix, "lib/systemd/system", u)
             for u in ("busrtd.service", "daemoneye-agent.service", "busrt-bridge.service")]
    for u in units:
        text = open(u).read()
        assert f"ExecStart={prefix}/sbin/" in text, text
        assert f"--config {prefix}/etc/daemoneye/" in text, text
    # Documentation=man:... is resolved against the installed pages
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    r = run(["systemd-analyze", "verify", *units], env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_man_pages_render(prefix):
    for m in MAN:
        page = os.path.join(prefix, "share/man", m)
        name = os.path.basename(m).rsplit(".", 1)[0]
        r = run(["man", "--warnings", "-l", page],
                env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"))
        assert r.returncode == 0 and r.stderr == "", (m, r.stderr)
        assert re.search(r"^NAME\n\s+" + re.escape(name) + " - ", r.stdout, re.M), r.stdout[:300]
        assert "SYNOPSIS" in r.stdout and "SEE ALSO" in r.stdout, m


def complete(prefix, prog, words):
    """What bash completes for words (the last one being typed), from the
    installed completion file."""
    comp = os.path.join(prefix, "share/bash-completion/completions", prog)
    fn = "_" + prog.replace("-", "_")
    script = (f"source {comp}; cd {ROOT}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; {fn}; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    r = run(["bash", "--norc", "-c", script])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return sorted(x for x in r.stdout.split("\n") if x)


def test_bash_completion(prefix):
    assert complete(prefix, "busrt-cli", ["busrt-cli", "rp"]) == ["rpc"]
    assert complete(prefix, "busrt-cli", ["busrt-cli", "/tmp/b.sock", "rpc", "c"]) == [
        "call", "call0"]
    assert complete(prefix, "busrt-cli", ["busrt-cli", "broker", "cl"]) == [
        "client.list", "clients"]
    assert "--exclude" in complete(prefix, "busrt-cli", ["busrt-cli", "listen", "--"])
    assert complete(prefix, "busrt-cli", ["busrt-cli", "--qos", ""]) == ["0", "1", "2", "3"]
    assert complete(prefix, "busrt-sim", ["busrt-sim", "sw"]) == ["sweep"]
    # scenario names from ./scenarios (a checkout: the cwd here)
    assert "default" in complete(prefix, "busrt-sim", ["busrt-sim", "run", "de"])
    assert "shutdown-waits" in complete(prefix, "busrt-sim", ["busrt-sim", "run", "x",
                                                              "--plant", "sh"])


def test_staging_install_keeps_configuration_and_uninstall(prefix):
    stage = tempfile.mkdtemp(prefix="st", dir="/tmp")
    try:
        make("install", f"DESTDIR={stage}", "PREFIX=/usr")
        have = files_under(stage)
        assert "usr/sbin/busrtd" in have and "etc/daemoneye/busrtd.yaml" in have
        assert "lib/systemd/system/busrtd.service" in have
        pc = open(os.path.join(stage, "usr/lib/pkgconfig/busrt.pc")).read()
        assert "prefix=/usr\n" in pc and stage not in pc, pc
        unit = open(os.path.join(stage, "lib/systemd/system/busrtd.service")).read()
        assert "ExecStart=/usr/sbin/busrtd --config /etc/daemoneye/busrtd.yaml" in unit
        cfg = os.path.join(stage, "etc/daemoneye/busrtd.yaml")
        with open(cfg, "a") as f:
            f.write("# edited by its administrator\n")
        mine = open(cfg).read()
        out = make("install", f"DESTDIR={stage}", "PREFIX=/usr")
        assert "busrtd.yaml exists: kept" in out, out
        assert open(cfg).read() == mine
        make("uninstall", f"DESTDIR={stage}", "PREFIX=/usr")
        assert files_under(stage) == {"etc/daemoneye/busrtd.yaml",
                                      "etc/daemoneye/daemoneye-agent.yaml",
                                      "etc/daemoneye/busrt-bridge.yaml"}
    finally:
        shutil.rmtree(stage, ignore_errors=True)
