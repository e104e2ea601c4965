#!/usr/bin/python3
"""Float conv2d, lowbit vs PyTorch, side by side in one run.

For each thread count T: measures the machine's fp32 peak with
`lowbit bench peak --threads T`, then for every ResNet-18 conv shape runs
`lowbit bench conv --threads T --case NAME --json` and, right after it, the
same shape in PyTorch (torch.nn.functional.conv2d, torch.set_num_threads(T)),
so both sides see the same machine state. PyTorch runs in one long-lived
worker process per thread count (its allocator in the steady state of a
training loop), stopped while lowbit runs; lowbit starts once per case and
reaches its steady state in the warm-up run (its buffer cache). Prints the comparison tables and
writes everything to JSON (--out).

Timed the same way on both sides: `warmup` untimed runs, then the median of
`reps`; with --rounds R each case alternates lowbit and PyTorch R times and
every figure is the median over the rounds; forward+backward = y = conv2d(x, w); y.backward(gy) with x and w
requiring grad, gradients set to None between runs (not timed). The
directions alone: lowbit's kernel table entries, PyTorch's
aten.convolution_backward with one output requested.

Both sides run under the same OpenMP waiting policy (--omp-wait-policy,
default passive; the lowbit tool on its own spins 1000 times and then
sleeps, and PyTorch on its own gets libgomp's 300000-spin default).

Debian's python3-torch is used through /usr/bin/python3 (a pyenv `python3`
on PATH may lack torch).

On a shared machine other processes distort the figures (with 2 threads on
2 cores, one busy core stalls every OpenMP barrier). The script measures the
CPU time other processes used while each case ran (/proc/stat minus its own
and its children's time), records it, and marks cases above 10% in the
tables; --wait-quiet S waits up to S seconds for a quiet machine before each
case, --retries N reruns a disturbed case up to N times (keeping the least
disturbed attempt).

usage: bench/compare_pytorch.py [--threads 1,2] [--batch 32] [--reps 5]
                                [--warmup 1] [--rounds 1] [--wait-quiet 0] [--retries 0]
                                [--cases a,b]
                                [--omp-wait-policy passive|active]
                                [--lowbit build/tools/lowbit]
                                [--out bench/results/conv_vs_pytorch.json]
"""
import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

# PyTorch runs in a worker child process (TorchWorker), never in this one.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json_lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def median_ms(warmup, reps, run, prep=lambda: None):
    times = []
    for i in range(warmup + reps):
        prep()
        t0 = time.perf_counter()
        run()
        t = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            times.append(t)
    return statistics.median(times)


def torch_case(c, warmup, reps):
    """PyTorch timings (ms) of one shape, from a lowbit JSON line's geometry (runs in the child)."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(1)
    n, ch, h, w, k, r, s = c["n"], c["c"], c["h"], c["w"], c["k"], c["r"], c["s"]
    stride, pad = c["stride"], c["pad"]
    x = torch.randn(n, ch, h, w)
    wt = torch.randn(k, ch, r, s)
    y0 = F.conv2d(x, wt, None, stride, pad)
    gy = torch.randn_like(y0)
    del y0
    res = {}
    res["fwd_ms"] = median_ms(warmup, reps, lambda: F.conv2d(x, wt, None, stride, pad))
    xg = x.clone().requires_grad_()
    wg = wt.clone().requires_grad_()

    def prep():
        xg.grad = None
        wg.grad = None

    def fwdbwd():
        F.conv2d(xg, wg, None, stride, pad).backward(gy)

    res["fwdbwd_ms"] = median_ms(warmup, reps, fwdbwd, prep)

    def direction(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gy, x, wt, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, mask)

    res["bwd_data_ms"] = median_ms(warmup, reps, direction([True, False, False]))
    res["bwd_weight_ms"] = median_ms(warmup, reps, direction([False, True, False]))
    return res


BUSY_LIMIT = 10.0  # % of all CPUs used by others above which a case is marked disturbed


def _busy_seconds():
    """CPU-seconds all processes have used (user … steal; steal counts: another guest had our CPU)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def _own_seconds(worker=None):
    t = os.times()  # this process + its waited-for children (the lowbit runs)
    return t.user + t.system + t.children_user + t.children_system + (worker.cpu_seconds() if worker else 0.0)


class OthersMeter:
    """CPU use of other processes (% of all CPUs) between start() and stop()."""

    def __init__(self, worker=None):
        self.worker = worker  # the PyTorch worker process: its CPU time is ours, not others'

    def start(self):
        try:
            self.t0, self.b0, self.o0 = time.time(), _busy_seconds(), _own_seconds(self.worker)
        except OSError:
            self.t0 = None
        return self

    def stop(self):
        if self.t0 is None:
            return None
        wall = time.time() - self.t0
        others = (_busy_seconds() - self.b0) - (_own_seconds(self.worker) - self.o0)
        return max(0.0, 100.0 * others / (wall * os.cpu_count()))


def wait_quiet(max_seconds):
    """Wait up to max_seconds until others use less than BUSY_LIMIT over 2 s."""
    deadline = time.time() + max_seconds
    while time.time() < deadline:
        m = OthersMeter().start()
        time.sleep(2.0)
        busy = m.stop()
        if busy is None or busy <= BUSY_LIMIT:
            return


def torch_worker(threads):
    """Child process entry (--torch-worker T): one JSON request per stdin line, one JSON answer per line."""
    import torch
    torch.set_num_threads(threads)
    for line in sys.stdin:
        q = json.loads(line)
        res = torch_case(q["case"], q["warmup"], q["reps"])
        res["torch_version"] = torch.__version__
        res["mkldnn"] = torch.backends.mkldnn.is_available()
        print(json.dumps(res), flush=True)


class TorchWorker:
    """One long-lived PyTorch process per thread count, so its allocator reaches the steady state of a
    training loop (in a fresh process every large output page-faults, adding up to ~80% to a conv).
    It is stopped (SIGSTOP) whenever lowbit runs: under OMP_WAIT_POLICY=active its idle OpenMP
    threads would otherwise spin on the cores lowbit is timed on."""

    def __init__(self, threads):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-worker", str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.stopped = False

    def run(self, case, warmup, reps):
        if self.stopped:
            os.kill(self.p.pid, signal.SIGCONT)
        self.p.stdin.write(json.dumps({"case": case, "warmup": warmup, "reps": reps}) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"compare_pytorch.py: the PyTorch worker died (exit {self.p.wait()})")
        os.kill(self.p.pid, signal.SIGSTOP)
        self.stopped = True
        res = json.loads(line)
        return {k: v for k, v in res.items() if k.endswith("_ms")}, res

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, IndexError, ValueError):
            return 0.0

    def close(self):
        if self.stopped:
            os.kill(self.p.pid, signal.SIGCONT)
        self.p.stdin.close()
        self.p.wait()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each case wait up to this many seconds for other processes to go quiet")
    ap.add_argument("--rounds", type=int, default=1,
                    help="per case, alternate lowbit and PyTorch this many times; report medians over rounds")
    ap.add_argument("--retries", type=int, default=0,
                    help="rerun a case (after --wait-quiet) up to this many times while others disturbed it")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "conv_vs_pytorch.json"))
    ap.add_argument("--torch-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--omp-wait-policy", choices=["passive", "active"], default="passive",
                    help="OMP_WAIT_POLICY for both lowbit and PyTorch (default passive)")
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a.torch_worker)  # OMP_WAIT_POLICY comes from the parent's environment
    os.environ["OMP_WAIT_POLICY"] = a.omp_wait_policy  # inherited by both sides' child processes
    threads = [int(t) for t in a.threads.split(",")]
    if not os.access(a.lowbit, os.X_OK):
        sys.exit(f"compare_pytorch.py: {a.lowbit} not found; build first (tools/run build)")

    info = run_json_lines([a.lowbit, "info", "--json"])[0]
    # The case list comes from lowbit itself (one quick batch-1 pass), so the
    # shapes are defined in one place (bench/conv_bench.cpp).
    case_names = [c["case"] for c in run_json_lines(
        [a.lowbit, "bench", "conv", "--batch", "1", "--reps", "1", "--warmup", "0", "--threads", "1", "--json"])]
    if a.cases:
        unknown = set(a.cases.split(",")) - set(case_names)
        if unknown:
            sys.exit(f"compare_pytorch.py: unknown case(s) {', '.join(sorted(unknown))}; cases: {', '.join(case_names)}")
        case_names = [c for c in case_names if c in a.cases.split(",")]
    load_start = os.getloadavg()
    started = time.time()
    report = {
        "command": " ".join(sys.argv),
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform()},
        "torch": {},
        "lowbit": info,
        "batch": a.batch, "reps": a.reps, "warmup": a.warmup, "rounds": a.rounds, "omp_wait_policy": a.omp_wait_policy,
        "load_average_start": load_start,
        "runs": [],
    }

    for t in threads:
        wait_quiet(a.wait_quiet)
        m = OthersMeter().start()
        peak = run_json_lines([a.lowbit, "bench", "peak", "--threads", str(t), "--json"])[-1]
        run = {"threads": t, "peak_f32_gflops": peak["f32_gflops"], "peak_isa": peak["isa"],
               "peak_others_busy_pct": m.stop(), "cases": []}
        report["runs"].append(run)
        worker = TorchWorker(t)
        for name in case_names:
            rounds = []
            for rnd in range(a.rounds):
                best = None
                for attempt in range(1 + a.retries):
                    wait_quiet(a.wait_quiet)
                    m = OthersMeter(worker).start()
                    lb = run_json_lines([a.lowbit, "bench", "conv", "--threads", str(t), "--batch", str(a.batch),
                                         "--reps", str(a.reps), "--warmup", str(a.warmup), "--case", name,
                                         "--json"])[0]
                    th, meta = worker.run(lb, a.warmup, a.reps)
                    report["torch"] = {"version": meta["torch_version"], "mkldnn": meta["mkldnn"]}
                    c = {"case": name, "lowbit": lb, "torch": th, "others_busy_pct": m.stop(), "attempt": attempt + 1}
                    print(f"  threads {t} {name} round {rnd + 1}: lowbit fwd {lb['fwd_ms']:.1f} ms, "
                          f"torch fwd {th['fwd_ms']:.1f} ms (others' CPU use {fmt_pct(c['others_busy_pct'])})",
                          file=sys.stderr, flush=True)
                    if best is None or (c["others_busy_pct"] or 0) < (best["others_busy_pct"] or 0):
                        best = c
                    if not disturbed(best):
                        break
                rounds.append(best)
            run["cases"].append(merge_rounds(rounds))
        worker.close()
        print_tables(run, a, info)
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.time() - started, 1)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nwrote {a.out} ({report['seconds']} s; load average start {load_start[0]:.2f}, "
          f"end {report['load_average_end'][0]:.2f})")


def merge_rounds(rounds):
    """One case from its rounds: every time is the median over rounds (each already a median of reps)."""
    def med(side, key):
        return statistics.median(r[side][key] for r in rounds)
    lb = dict(rounds[0]["lowbit"])
    for k in lb:
        if k.endswith("_ms"):
            lb[k] = med("lowbit", k)
    lb["fwd_gflops"] = lb["gflop_fwd"] / (lb["fwd_ms"] * 1e-3)
    lb["fwdbwd_gflops"] = 3 * lb["gflop_fwd"] / (lb["fwdbwd_ms"] * 1e-3)
    th = {k: med("torch", k) for k in rounds[0]["torch"]}
    busy = [r["others_busy_pct"] for r in rounds if r["others_busy_pct"] is not None]
    return {"case": rounds[0]["case"], "lowbit": lb, "torch": th,
            "others_busy_pct": max(busy) if busy else None, "rounds": rounds}


def fmt_pct(p):
    return "?" if p is None else f"{p:.0f}%"


def disturbed(c):
    return c["others_busy_pct"] is not None and c["others_busy_pct"] > BUSY_LIMIT


def print_tables(run, a, info):
    t, peak = run["threads"], run["peak_f32_gflops"]
    rounds = f", median over {a.rounds} rounds" if a.rounds > 1 else ""
    print(f"\n### {t} thread{'s' if t > 1 else ''} — batch {a.batch}, median of {a.reps} reps{rounds}; "
          f"lowbit conv path {info['paths']['f32_conv']}; measured fp32 peak {peak:.1f} GFLOP/s; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}\n")
    print("| case | shape | fwd lowbit ms | fwd torch ms | torch/lowbit | lowbit GFLOP/s | % peak "
          "| fwd+bwd lowbit ms | fwd+bwd torch ms | torch/lowbit | lowbit GFLOP/s | % peak |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    tot = {"lf": 0.0, "tf": 0.0, "lb": 0.0, "tb": 0.0, "g": 0.0}
    for c in run["cases"]:
        lb, th = c["lowbit"], c["torch"]
        g = lb["gflop_fwd"]
        shape = f"{lb['c']}→{lb['k']} {lb['r']}×{lb['s']}/{lb['stride']} @{lb['h']}"
        fr = th["fwd_ms"] / lb["fwd_ms"]
        br = th["fwdbwd_ms"] / lb["fwdbwd_ms"]
        fg = g / (lb["fwd_ms"] * 1e-3)
        bg = 3 * g / (lb["fwdbwd_ms"] * 1e-3)
        mark = " ⚠" if disturbed(c) else ""
        print(f"| {c['case']}{mark} | {shape} | {lb['fwd_ms']:.1f} | {th['fwd_ms']:.1f} | {fr:.2f} | {fg:.1f} | "
              f"{100 * fg / peak:.0f}% | {lb['fwdbwd_ms']:.1f} | {th['fwdbwd_ms']:.1f} | {br:.2f} | {bg:.1f} | "
              f"{100 * bg / peak:.0f}% |")
        tot["lf"] += lb["fwd_ms"]
        tot["tf"] += th["fwd_ms"]
        tot["lb"] += lb["fwdbwd_ms"]
        tot["tb"] += th["fwdbwd_ms"]
        tot["g"] += g
    fg = tot["g"] / (tot["lf"] * 1e-3)
    bg = 3 * tot["g"] / (tot["lb"] * 1e-3)
    print(f"| **all** | | {tot['lf']:.1f} | {tot['tf']:.1f} | {tot['tf'] / tot['lf']:.2f} | {fg:.1f} | "
          f"{100 * fg / peak:.0f}% | {tot['lb']:.1f} | {tot['tb']:.1f} | {tot['tb'] / tot['lb']:.2f} | {bg:.1f} | "
          f"{100 * bg / peak:.0f}% |")

    if any(disturbed(c) for c in run["cases"]) or (run["peak_others_busy_pct"] or 0) > BUSY_LIMIT:
        print(f"\n⚠ other processes used more than {BUSY_LIMIT:.0f}% of the CPUs while this case ran (peak "
              f"measurement: {fmt_pct(run['peak_others_busy_pct'])}); its figures are not reliable.")
    print(f"\nDirections alone ({t} thread{'s' if t > 1 else ''}; ms; ratio = torch/lowbit):\n")
    print("| case | fwd lowbit | fwd torch | ratio | bwd-data lowbit | bwd-data torch | ratio "
          "| bwd-weight lowbit | bwd-weight torch | ratio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c in run["cases"]:
        lb, th = c["lowbit"], c["torch"]
        print(f"| {c['case']} | {lb['kernel_fwd_ms']:.1f} | {th['fwd_ms']:.1f} | "
              f"{th['fwd_ms'] / lb['kernel_fwd_ms']:.2f} | {lb['kernel_bwd_data_ms']:.1f} | "
              f"{th['bwd_data_ms']:.1f} | {th['bwd_data_ms'] / lb['kernel_bwd_data_ms']:.2f} | "
              f"{lb['kernel_bwd_weight_ms']:.1f} | {th['bwd_weight_ms']:.1f} | "
              f"{th['bwd_weight_ms'] / lb['kernel_bwd_weight_ms']:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
