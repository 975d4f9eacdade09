#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Mutation testing of the cores: how much of what the code does would a
test notice if it were wrong?

  scripts/mutate.py [-m N] [--seed S] [--jobs J] [--floor F] [--list]

Single-operator mutants of broker/core, broker/client and broker/services
(relational and logical operators swapped, a statement deleted, an integer
constant +1), a sample of N drawn with seed S by a hash of each site's
identity (file, line text, mutant), so that edits elsewhere leave it be. Each is applied to a copy of the tree (the tracked files as
they are now), rebuilt incrementally, and run against the unit tests and
the simulator's sweeps of every shipped scenario in both topologies (faults drawn from each
seed, and without faults). A mutant that does not build is not counted; one
that a test fails on, or that hangs past the timeout, is killed; the rest
survive. A survivor listed in mutate/equivalent.txt (file, line text and
mutant, with the reason it cannot change behaviour) is set aside as
equivalent. Prints every survivor (file:line, the line before and after)
and the score: killed / (built - equivalent). With --floor F, exits 1 when
the score is below F (a ratchet for CI, like the coverage floors).
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DIRS = ("broker/core", "broker/client", "broker/services")
SCENARIOS = ("default", "burst-overflow", "drop-newest", "hostile-names",
             "rec-burst", "rec-parallel-build", "rec-shell-session")
LEDGER = os.path.join(ROOT, "mutate", "equivalent.txt")

# (name, pattern, replacement): applied to one match in a line's code
RELATIONAL = [("==", r"=="), ("!=", r"!="), ("<=", r"<="), (">=", r">="),
              ("<", r"(?<![<\-])<(?![<=])"), (">", r"(?<![>\-])>(?![>=])")]
SWAP = {"==": "!=", "!=": "==", "<=": "<", ">=": ">", "<": "<=", ">": ">="}


def code_part(line):
    """The line with strings, chars and comments blanked (same length)."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if line.startswith("//", i):
            out.append(" " * (n - i))
            break
        if line.startswith("/*", i):
            j = line.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * (j - i))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + (c if j - i >= 2 else ""))
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


DELETABLE = re.compile(r"^\s*(?!return\b|break\b|continue\b|goto\b|case\b|default\b|"
                       r"if\b|for\b|while\b|else\b|do\b|switch\b)"
                       r"[A-Za-z_][\w\->\.\[\]]*\s*(\+\+|--|[-+|&^*/]?=[^=]|\().*;\s*$")
DECL = re.compile(r"^\s*(const\s+|static\s+|struct\s+|enum\s+|unsigned\s+|"
                  r"u?int\d+_t\s|size_t\s|bool\s|int\s|char\s|long\s|double\s|void\s)")


def sites(path):
    """Every mutation of the file: (line number, original, mutated, kind)."""
    out = []
    in_comment = False
    with open(path) as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if in_comment:
            if "*/" in s:
                in_comment = False
            continue
        if s.startswith("/*") and "*/" not in s:
            in_comment = True
            continue
        if not s or s.startswith(("#", "*", "//")):
            continue
        code = code_part(line)
        if "BUS_ASSERT" in code or "static_assert" in code.lower():
            continue  # an assertion's own operators test the test
        for op, pat in RELATIONAL:
            for m in re.finditer(pat, code):
                out.append((no, line, line[:m.start()] + SWAP[op] + line[m.end():],
                            f"{op} -> {SWAP[op]}"))
        for op, to in (("&&", "||"), ("||", "&&")):
            for m in re.finditer(re.escape(op), code):
                out.append((no, line, line[:m.start()] + to + line[m.end():],
                            f"{op} -> {to}"))
        for m in re.finditer(r"(?<![\w.])(\d+)(?![\w.])", code):
            if DECL.match(code) and "[" in code[:m.start()]:
                continue  # an array's size
            v = int(m.group(1))
            out.append((no, line, line[:m.start()] + str(v + 1) + line[m.end():],
                        f"{v} -> {v + 1}"))
        if DELETABLE.match(code) and not DECL.match(code) and code.count("(") == code.count(")"):
            indent = line[:len(line) - len(line.lstrip())]
            out.append((no, line, indent + "; /* deleted */", "statement deleted"))
    return out


def all_sites():
    res = []
    for d in DIRS:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            # check.c is the invariants' checker: its mutants are caught
            # only by a bug it exists to find (scripts/sim-test.sh's planted
            # qbytes), not by the code being right
            if name.endswith(".c") and name != "check.c":
                rel = f"{d}/{name}"
                res += [(rel, *x) for x in sites(os.path.join(ROOT, rel))]
    return res


def sample(every, m, seed):
    """m sites, each drawn by a hash of what it is (file, line text,
    mutant, which occurrence of that line), not where it is: an edit
    elsewhere leaves the sample alone, so the score of one sample can be
    compared from commit to commit (the CI floor)."""
    seen = {}
    keyed = []
    for site in every:
        rel, _, old, new, _ = site
        ident = (rel, old.strip(), new.strip())
        k = seen.get(ident, 0)
        seen[ident] = k + 1
        h = hashlib.sha256(f"{seed}\0{rel}\0{ident[1]}\0{ident[2]}\0{k}".encode())
        keyed.append((h.digest(), site))
    keyed.sort(key=lambda x: x[0])
    chosen = [site for _, site in keyed[:m]]
    return sorted(chosen, key=lambda x: (x[0], x[1]))


def ledger():
    keep = set()
    if os.path.exists(LEDGER):
        for raw in open(LEDGER):
            if raw.startswith("#") or not raw.strip():
                continue
            parts = raw.rstrip("\n").split("\t")
            if len(parts) >= 3:
                keep.add((parts[0], parts[1].strip(), parts[2].strip()))
    return keep


def run(cmd, cwd, timeout):
    """The exit status, or "timeout" (a hang kills the mutant: the unit
    tests take seconds, a sweep well under a minute). A timed-out command
    is stopped with everything it started (its process group)."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return "timeout"


def build(tree, jobs):
    return run(["make", f"-j{jobs}", "--no-print-directory", "build/bin/busrt-sim",
                "tests"], tree, 600) == 0


def tests(tree, seeds, jobs):
    """0 when every test passes; else what failed first."""
    if run(["make", "--no-print-directory", "unit"], tree, 60) != 0:
        return "unit"
    sim = os.path.join(tree, "build", "bin", "busrt-sim")
    for sc in SCENARIOS:
        for topo in ("embedded", "standalone"):
            for faults in ([], ["--faults", "none"]):
                n = seeds if not faults else max(seeds // 10, 3)
                rc = run([sim, "sweep", sc, "--seeds", f"1..{n}", "-j", str(jobs),
                          "--topology", topo, *faults], tree, 120)
                if rc != 0:
                    return f"sim {sc} {topo}{' no faults' if faults else ''}"
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", type=int, default=40, help="mutants to sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=100, help="simulator seeds per scenario")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--floor", type=float, default=None)
    ap.add_argument("--list", action="store_true", help="print the sample and stop")
    a = ap.parse_args()

    every = all_sites()
    chosen = sample(every, a.m, a.seed)
    print(f"mutate: {len(every)} mutation sites in {', '.join(DIRS)}; "
          f"{len(chosen)} sampled (seed {a.seed})", flush=True)
    if a.list:
        for f, no, old, new, kind in chosen:
            print(f"  {f}:{no}: {kind}: {old.strip()}  =>  {new.strip()}")
        return 0

    tree = tempfile.mkdtemp(prefix="mut", dir="/tmp")
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
        for rel in filter(None, files):
            src = os.path.join(ROOT, rel)
            if os.path.isfile(src):
                os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
                shutil.copy2(src, os.path.join(tree, rel))
        t0 = time.monotonic()
        if not build(tree, a.jobs) or tests(tree, a.seeds, a.jobs) != 0:
            print("mutate: the unmutated tree does not build or pass", file=sys.stderr)
            return 2
        print(f"mutate: baseline built and passed in {time.monotonic() - t0:.0f} s",
              flush=True)
        eq = ledger()
        built = killed = equivalent = 0
        survivors = []
        for k, (rel, no, old, new, kind) in enumerate(chosen, 1):
            path = os.path.join(tree, rel)
            with open(path) as f:
                text = f.read()
            lines = text.split("\n")
            assert lines[no - 1] == old
            lines[no - 1] = new
            with open(path, "w") as f:
                f.write("\n".join(lines))
            t1 = time.monotonic()
            try:
                if not build(tree, a.jobs):
                    verdict = "did not build"
                else:
                    built += 1
                    why = tests(tree, a.seeds, a.jobs)
                    if why:
                        killed += 1
                        verdict = f"killed ({why})"
                    elif (rel, old.strip(), new.strip()) in eq:
                        equivalent += 1
                        verdict = "equivalent (ledger)"
                    else:
                        verdict = "SURVIVED"
                        survivors.append((rel, no, old, new, kind))
            finally:
                with open(path, "w") as f:
                    f.write(text)
                os.utime(path)  # the next build recompiles it
            print(f"  [{k}/{len(chosen)}] {rel}:{no} {kind}: {verdict} "
                  f"({time.monotonic() - t1:.0f} s)", flush=True)
        build(tree, a.jobs)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    scored = built - equivalent
    score = killed / scored if scored else 1.0
    print(f"\nmutate: {built} of {len(chosen)} built; {killed} killed, "
          f"{len(survivors)} survived, {equivalent} equivalent (ledger): "
          f"score {100 * score:.1f}% ({killed}/{scored})")
    if survivors:
        print("survivors (kill each with a check or a test, or add it to "
              "mutate/equivalent.txt with the reason):")
        for rel, no, old, new, kind in survivors:
            print(f"  {rel}:{no}: {kind}\n      - {old.strip()}\n      + {new.strip()}")
    if a.floor is not None and 100 * score < a.floor:
        print(f"mutate: FAILED: score {100 * score:.1f}% below the floor {a.floor}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
