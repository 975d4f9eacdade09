# SPDX-License-Identifier: Apache-2.0
"""Sharded sweeps on real engines: the checked-in recipes run here with
each engine's own variables set (a CI matrix's SHARD_INDEX, a Kubernetes
Indexed Job's JOB_COMPLETION_INDEX, a Slurm array's SLURM_ARRAY_TASK_*,
GNU parallel with this machine as its one SSH login), and their merged
results equal the one-machine sweep's. The YAML recipes must parse and
say what the script expects; the Slurm script must be valid bash."""
import json
import os
import shutil
import subprocess

import yaml

from busclient import BIN
from test_sim import sweep_comparable as comparable

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SIM = os.path.join(BIN, "busrt-sim")
SHARD = os.path.join(ROOT, "scripts", "shard-sweep.sh")
SEEDS = "1..24"


def env(**kw):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("SHARD_", "JOB_COMPLETION", "SLURM_"))}
    e.update(BUSRT_SIM=SIM, BUSRT_SCENARIOS=os.path.join(ROOT, "scenarios"), JOBS="1")
    e.update({k: str(v) for k, v in kw.items()})
    return e


def whole(cwd):
    """The one-machine sweep, run from cwd (the scenario's path in the
    report is as found from there)."""
    p = subprocess.run([SIM, "sweep", "default", "--seeds", SEEDS, "-j", "2", "--json"],
                       capture_output=True, text=True, env=env(), cwd=cwd, timeout=120)
    assert p.returncode == 0, p.stderr
    return comparable(json.loads(p.stdout))


def merged(out):
    files = sorted(str(f) for f in out.glob("shard-*.json"))
    p = subprocess.run([SIM, "merge", *files, "--json"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return comparable(json.loads(p.stdout))


def run_shards(out, variables, tmp_path):
    for v in variables:
        p = subprocess.run([SHARD, "default", SEEDS, str(out)], capture_output=True,
                           text=True, env=env(**v), cwd=tmp_path, timeout=120)
        assert p.returncode == 0, (v, p.stderr)


def test_the_engines_variables_make_the_same_sweep(tmp_path):
    want = whole(tmp_path)
    engines = {
        "matrix": [{"SHARD_INDEX": k, "SHARD_COUNT": 4} for k in (1, 2, 3, 4)],
        "k8s": [{"JOB_COMPLETION_INDEX": i, "SHARD_COUNT": 3} for i in (2, 0, 1)],
        "slurm": [{"SLURM_ARRAY_TASK_ID": t, "SLURM_ARRAY_TASK_MIN": 5,
                   "SLURM_ARRAY_TASK_COUNT": 2} for t in (5, 6)],
    }
    for name, variables in engines.items():
        out = tmp_path / name
        run_shards(out, variables, tmp_path)
        assert len(list(out.glob("shard-*.json"))) == len(variables), name
        assert merged(out) == want, name


def test_no_shard_is_said(tmp_path):
    p = subprocess.run([SHARD, "default", SEEDS, str(tmp_path / "o")], capture_output=True,
                       text=True, env=env(), timeout=60)
    assert p.returncode == 2 and "no shard" in p.stderr, p.stderr


def test_gnu_parallel_over_ssh_logins(tmp_path):
    assert shutil.which("parallel"), "GNU parallel (ci/deps.sh test) is missing"
    hosts = tmp_path / "hosts"
    hosts.write_text(":\n")  # this machine, as parallel names it
    out = tmp_path / "par"
    p = subprocess.run([os.path.join(ROOT, "deploy", "parallel", "sim-sweep.sh"),
                        str(hosts), "default", SEEDS, "3"], capture_output=True,
                       text=True, env=env(OUT=str(out)), timeout=300)
    assert p.returncode == 0, p.stderr
    assert "24 passed, 0 failed" in p.stdout, p.stdout
    assert (out / "sim.xml").exists()
    assert merged(out) == whole(ROOT)  # the recipe runs in the checkout


def test_the_recipes_parse_and_call_the_script():
    wf = yaml.safe_load(open(os.path.join(ROOT, ".github", "workflows", "sim-sharded.yml")))
    shard, merge = wf["jobs"]["shard"], wf["jobs"]["merge"]
    assert shard["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    step = [s for s in shard["steps"] if "shard-sweep.sh" in s.get("run", "")][0]
    assert set(step["env"]) == {"SHARD_INDEX", "SHARD_COUNT"}
    assert any("busrt-sim merge" in s.get("run", "") for s in merge["steps"])
    assert merge["needs"] == "shard"
    job = yaml.safe_load(open(os.path.join(ROOT, "deploy", "k8s", "sim-sweep-job.yaml")))
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    c = spec["template"]["spec"]["containers"][0]
    assert c["command"][0] == "scripts/shard-sweep.sh"
    count = {e["name"]: e["value"] for e in c["env"]}["SHARD_COUNT"]
    assert int(count) == spec["completions"]
    sb = os.path.join(ROOT, "deploy", "slurm", "sim-sweep.sbatch")
    assert subprocess.run(["bash", "-n", sb]).returncode == 0
    text = open(sb).read()
    assert "#SBATCH --array=" in text and "shard-sweep.sh" in text
    for script in (SHARD, os.path.join(ROOT, "deploy", "parallel", "sim-sweep.sh")):
        assert subprocess.run(["bash", "-n", script]).returncode == 0
