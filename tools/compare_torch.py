#!/usr/bin/python3
"""compare_torch.py - nabla against PyTorch side by side, in one run.

For each model, alternates `nabla bench --model M --json` and the matching
torch_*.py script of shared/bench/ (or its copy, tools/torch_bench/) for --rounds rounds (same batch, same threads;
BLIS_NUM_THREADS/OMP_NUM_THREADS set for both), then prints the median
training steps per second of each and their ratio, and the peak RSS.
Steps per second are the same statistic on both sides: the mean over the
timed steps for mlp and lenet (the torch scripts time an epoch), the median
step for resnet20 (torch_resnet20.py reports the median of its steps).

Needs PyTorch and NumPy for /usr/bin/python3 (apt-get install -y
python3-torch python3-numpy).
Usage: /usr/bin/python3 tools/compare_torch.py [--nabla build/tools/nabla]
       [--bench-dir ../shared/bench or tools/torch_bench] [--threads 2] [--rounds 3]
       [--models xor,mlp,lenet,resnet20]
Prints one JSON object per model on stdout, a table on stderr.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--nabla", default=os.path.join(here, "..", "build", "tools", "nabla"))
# the team's shared/bench/ beside the repository when it is there, else the
# copy in tools/torch_bench/ (the same scripts, so a fresh clone runs it)
shared = os.path.join(here, "..", "..", "shared", "bench")
ap.add_argument("--bench-dir",
                default=shared if os.path.isdir(shared) else os.path.join(here, "torch_bench"))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--models", default="xor,mlp,lenet,resnet20")
args = ap.parse_args()

env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), BLIS_NUM_THREADS=str(args.threads))

if subprocess.run(["/usr/bin/python3", "-c", "import torch, numpy"], capture_output=True).returncode:
    sys.exit("compare_torch.py: /usr/bin/python3 lacks PyTorch or NumPy "
             "(apt-get install -y python3-torch python3-numpy)")
for m in args.models.split(","):
    script = os.path.join(args.bench_dir, "torch_%s.py" % m)
    if not os.path.isfile(script):
        sys.exit("compare_torch.py: no %s (--bench-dir names the PyTorch scripts' directory)"
                 % script)


def run_json(cmd):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def nabla(model):
    cmd = [args.nabla, "bench", "--model", model, "--threads", str(args.threads), "--json"]
    if model in ("mlp", "lenet"):
        cmd += ["--steps", "938"]  # one epoch's worth of steps, as the torch scripts time
    if model == "resnet20":
        cmd += ["--steps", "20", "--warmup", "5"]
    d = run_json(cmd)
    if model == "xor":
        return 1.0 / d["total_s"], d["peak_rss_mib"]  # runs of 10 000 epochs per second
    if model == "resnet20":  # torch_resnet20.py reports the median step: compare like with like
        return 1000.0 / d["ms_per_step_median"], d["peak_rss_mib"]
    return 1000.0 / d["ms_per_step"], d["peak_rss_mib"]


def torch(model):
    script = os.path.join(args.bench_dir, "torch_%s.py" % model)
    cmd = ["/usr/bin/python3", script, "--threads", str(args.threads)]
    if model in ("mlp", "lenet"):
        cmd += ["--epochs", "1"]
    d = run_json(cmd)
    if model == "xor":
        return 1.0 / d["total_s"], d["peak_rss_mib"]
    if model == "resnet20":
        return 1000.0 / d["step_ms_median"], d["peak_rss_mib"]
    return 1000.0 / d["epochs"][0]["ms_per_step"], d["peak_rss_mib"]


for model in args.models.split(","):
    ours, theirs, rss_ours, rss_theirs = [], [], [], []
    for r in range(args.rounds):
        s, m = nabla(model)
        ours.append(s)
        rss_ours.append(m)
        s, m = torch(model)
        theirs.append(s)
        rss_theirs.append(m)
    a, b = statistics.median(ours), statistics.median(theirs)
    res = {"model": model, "threads": args.threads, "rounds": args.rounds,
           "unit": "10000-epoch runs/s" if model == "xor" else "steps/s",
           "nabla": round(a, 3), "torch": round(b, 3), "ratio": round(a / b, 3),
           "nabla_all": [round(x, 3) for x in ours], "torch_all": [round(x, 3) for x in theirs],
           "peak_rss_mib_nabla": max(rss_ours), "peak_rss_mib_torch": max(rss_theirs)}
    print(json.dumps(res))
    print("%-9s nabla %9.3f  torch %9.3f  ratio %6.2fx   peak RSS %6.1f vs %6.1f MiB"
          % (model, a, b, a / b, max(rss_ours), max(rss_theirs)), file=sys.stderr)
    sys.stdout.flush()
