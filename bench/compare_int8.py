#!/usr/bin/python3
"""Int8 inference, whole models, lowbit vs PyTorch, side by side in one run.

For each model (resnet18, mobilenet_v2: torchvision's structures, random
weights, 3x224x224 input, 1000 classes), thread count T and batch B, measures

  lowbit bench models --model M --batch B --threads T --reps R --warmup W --json
        (its own process; one JSON line per implementation, impl "lowbit-float"
        and "lowbit-int8", with "ms", "isa" and "gops")
  this script --worker --models M --threads T --batches ...   (its own process, PyTorch)
        torch-float: torchvision.models.M(), eval, inference_mode;
        torch-int8-<engine>: eager-mode PTQ of torchvision.models.quantization.M
        (quantize=False) for every engine in torch.backends.quantized.
        supported_engines but 'none' (or --engines): engine selected, eval,
        fuse_model(), get_default_qconfig(engine), prepare, calibrate on a few
        random batches, convert (a fresh copy per batch size: 1.13's onednn
        models fail on a second input shape at >1 thread). An engine that fails
        records an entry with an "error" field instead of a time.

The PyTorch worker runs once per (model, T) and covers every batch; lowbit runs
once per (model, B, T), right after it. Both time a forward pass on a fixed
random batch: `warmup` untimed runs, then the median of `reps` (time.perf_counter
on the PyTorch side). A case whose first run says warmup+reps would take longer
than --budget seconds (batch 32 at 1 thread) gets fewer runs: one warm-up and at
least 3 reps (fewer only if --reps asks for fewer); lowbit's reps are planned the
same way from PyTorch's float time at that batch and thread count. Every entry
records the reps and warm-up it had.

The int8 models take float input and give float output on both sides (PyTorch's
QuantStub/DeQuantStub are inside the timing). torchvision's quantizable
MobileNetV2 uses ReLU where the float one uses ReLU6.

GOP counts the conv/linear multiply-adds (x2) of one forward pass of the whole
batch: lowbit's "gops" when it reports one, else the worker's own count (forward
hooks on the float model). The worker's count is recorded too, and a lowbit
count that differs from it by more than 1% is reported. The fraction of peak
divides lowbit-int8's rate by `lowbit bench peak --json`'s "int8_gops" at T
threads (the line with lowbit-int8's isa if there are several), when both exist.

Ratios per case: "int8 vs pt-best" = PyTorch's fastest int8 engine's ms /
lowbit-int8's ms; "lb i8/f32" = lowbit-float's ms / lowbit-int8's ms.

Debian's python3-torch (1.13) and python3-torchvision through /usr/bin/python3.
Both sides run with GOMP_SPINCOUNT=--spin (default 1000, the lowbit tool's own
choice; libgomp's default is 300000), no OMP_WAIT_POLICY, and OMP_NUM_THREADS=
MKL_NUM_THREADS=T (plus torch.set_num_threads(T), which also sizes QNNPACK's pool).

usage: bench/compare_int8.py [--models resnet18,mobilenet_v2] [--batches 1,32] [--threads 1,N]
                             [--reps 10] [--warmup 3] [--budget 20] [--spin 1000]
                             [--engines qnnpack,onednn] [--lowbit build/tools/lowbit]
                             [--out bench/results/int8_vs_pytorch.json]
"""
import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ["resnet18", "mobilenet_v2"]
CALIB_BATCHES = 4  # random calibration batches for PyTorch's observers…
CALIB_BATCH = 4    # …of this many images
TIMEOUT_S = 3600   # any one subprocess


def plan_runs(est_s, warmup, reps, budget):
    """(warmup, reps) for a case whose one run takes about est_s seconds."""
    if est_s <= 0 or (warmup + reps) * est_s <= budget:
        return warmup, reps
    fits = int(budget / est_s)
    r = max(min(reps, 3), min(reps, fits - 1))
    w = min(warmup, max(1, fits - r)) if warmup > 0 else 0
    return w, r


def time_forward(fn, warmup, reps, budget):
    """Median of the timed runs after the warm-up; the first run sizes the case."""
    def once():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    secs = []
    first = once()  # the first warm-up run, or the first timed one without warm-up
    if warmup == 0:
        secs.append(first)
    w, r = plan_runs(first, warmup, reps, budget)
    for _ in range(w - 1):
        once()
    while len(secs) < r:
        secs.append(once())
    return {"ms": statistics.median(secs) * 1e3, "min_ms": min(secs) * 1e3, "reps": r, "warmup": w}


def count_gops(model, torch):
    """Conv/linear multiply-adds x2 of one 3x224x224 image, in 1e9."""
    macs = [0]

    def conv_hook(m, inp, out):
        macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        model(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return 2 * macs[0] / 1e9


def torch_info():
    import torch
    import torchvision
    print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                      "engines": list(torch.backends.quantized.supported_engines),
                      "default_threads": torch.get_num_threads()}), flush=True)


def torch_worker(model_name, threads, batches, reps, warmup, engines, budget):
    import torch
    import torchvision
    import torchvision.models.quantization as qmodels
    import torch.ao.quantization as tq
    torch.set_num_threads(threads)
    base = {"bench": "models", "framework": "pytorch", "torch": torch.__version__, "model": model_name,
            "threads": threads}

    def emit(impl, batch, **kw):
        print(json.dumps(dict(base, impl=impl, batch=batch, **kw)), flush=True)

    def err(e):
        return f"{type(e).__name__}: {e}".strip().splitlines()[0][:500]

    def time_model(impl, get_model, gops_img, extra):
        for b in batches:
            try:
                model = get_model()
                torch.manual_seed(b)
                x = torch.randn(b, 3, 224, 224)
                with torch.inference_mode():
                    r = time_forward(lambda: model(x), warmup, reps, budget)
                emit(impl, b, gops=gops_img * b if gops_img else None, **extra, **r)
            except Exception as e:  # noqa: BLE001 - recorded, not fatal
                emit(impl, b, error=err(e), **extra)
            model = None

    gops_img = None
    try:
        torch.manual_seed(0)
        model = getattr(torchvision.models, model_name)().eval()
        gops_img = count_gops(model, torch)
    except Exception as e:  # noqa: BLE001
        for b in batches:
            emit("torch-float", b, error=err(e))
    else:
        time_model("torch-float", lambda: model, gops_img, {})
        model = None
    for engine in engines:
        impl = "torch-int8-" + engine
        try:
            torch.backends.quantized.engine = engine
            torch.manual_seed(0)
            model = getattr(qmodels, model_name)(weights=None, quantize=False).eval()
            model.fuse_model()
            model.qconfig = tq.get_default_qconfig(engine)
            tq.prepare(model, inplace=True)
            with torch.inference_mode():
                for _ in range(CALIB_BATCHES):
                    model(torch.randn(CALIB_BATCH, 3, 224, 224))
        except Exception as e:  # noqa: BLE001
            for b in batches:
                emit(impl, b, engine=engine, error=err(e))
            continue
        # converted afresh for each batch size: PyTorch 1.13's onednn int8 model
        # fails ("could not create a primitive descriptor for a reorder
        # primitive") when a multi-threaded model sees a second input shape
        time_model(impl, lambda: tq.convert(copy.deepcopy(model)), gops_img, {"engine": engine})
        model = None


def run_json(cmd, env):
    """(JSON objects from the lines of stdout that start with '{', error text or None)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], f"{type(e).__name__}: {e}"
    rows, error = [], None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                error = f"bad JSON line {line[:200]!r}: {e}"
    if p.returncode != 0:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        error = f"exit status {p.returncode}" + (f": {tail}" if tail else "")
    elif not rows and error is None:
        error = "no JSON lines in the output"
    return rows, error


def cpu_info():
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and model == (platform.processor() or platform.machine()):
                    model = v.strip()
                elif k.strip() == "flags" and not flags:
                    have = set(v.split())
                    flags = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                                         "avx512_bf16", "amx_int8") if x in have]
    except OSError:
        pass
    return model, flags


def fmt_ms(e):
    if e is None:
        return "-"
    if "error" in e or e.get("ms") is None:
        return "err"
    return f"{e['ms']:.2f}"


def main():
    ncpu = os.cpu_count() or 1
    ap = argparse.ArgumentParser(description="int8 whole-model inference, lowbit vs PyTorch")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of resnet18, mobilenet_v2")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", default="1" if ncpu == 1 else f"1,{ncpu}")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds one case may take before its runs are cut (at least 1 warm-up, 3 reps)")
    ap.add_argument("--spin", type=int, default=1000, help="GOMP_SPINCOUNT for both sides")
    ap.add_argument("--engines", default="", help="comma list of PyTorch quantized engines (default: all but 'none')")
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "int8_vs_pytorch.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--info", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.reps < 1 or a.warmup < 0:
        ap.error("--reps must be positive and --warmup not negative")
    models = [m for m in a.models.split(",") if m]
    batches = [int(s) for s in a.batches.split(",") if s]
    threads = list(dict.fromkeys(int(s) for s in a.threads.split(",") if s))
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model '{m}' ({', '.join(MODELS)})")
    if a.info:
        torch_info()
        return
    if a.worker:
        torch_worker(models[0], threads[0], batches, a.reps, a.warmup,
                     [e for e in a.engines.split(",") if e], a.budget)
        return

    # The same OpenMP waiting for both sides (both use libgomp): spin
    # GOMP_SPINCOUNT times at a barrier, then sleep.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["GOMP_SPINCOUNT"] = str(a.spin)
    me = [sys.executable, os.path.abspath(__file__)]
    info_rows, info_err = run_json(me + ["--info"], env)
    if info_err:
        sys.exit(f"compare_int8: cannot query PyTorch: {info_err}")
    info = info_rows[0]
    supported = [e for e in info["engines"] if e != "none"]
    engines = [e for e in a.engines.split(",") if e] if a.engines else supported
    entries = []

    # lowbit's measured peak for 1..max(threads) (optional: used for the fraction of peak)
    peak, peak_err = run_json([a.lowbit, "bench", "peak", "--threads", str(max(threads)), "--json"], env)
    peak = [p for p in peak if p.get("bench", "peak") == "peak"]
    if peak_err:
        print(f"lowbit bench peak: {peak_err} (no fraction of peak)", flush=True)

    cpu, flags = cpu_info()
    print(f"{cpu}, {ncpu} CPUs ({' '.join(flags)}); torch {info['torch']}, engines {','.join(engines)}; "
          f"GOMP_SPINCOUNT={a.spin}", flush=True)
    cols = ["lowbit-float", "lowbit-int8", "torch-float"] + ["torch-int8-" + e for e in engines]
    heads = ["lb-float", "lb-int8", "pt-float"] + ["pt-i8-" + e for e in engines]
    widths = [max(len(h), 8) for h in heads]
    header = (f"{'model':<13}{'B':>4}{'T':>4}  " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
              + f"  {'int8 vs pt-best':>22} {'lb i8/f32':>9} {'i8 %peak':>8}   (ms, median)")
    print(header, flush=True)

    cases = []
    for model in models:
        for t in threads:
            wenv = dict(env, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
            pt_rows, pt_err = run_json(me + ["--worker", "--models", model, "--threads", str(t), "--batches",
                                             ",".join(map(str, batches)), "--reps", str(a.reps), "--warmup",
                                             str(a.warmup), "--budget", str(a.budget),
                                             "--engines", ",".join(e for e in engines if e in supported)], wenv)
            for e in engines:
                if e not in supported:
                    pt_rows += [{"bench": "models", "framework": "pytorch", "model": model, "batch": b, "threads": t,
                                 "impl": "torch-int8-" + e, "engine": e,
                                 "error": f"engine not in this torch's supported_engines {info['engines']}"}
                                for b in batches]
            for b in batches:
                if pt_err:  # a crashed worker: every PyTorch entry it did not print is an error
                    have = {r["impl"] for r in pt_rows if r.get("batch") == b}
                    pt_rows += [{"bench": "models", "framework": "pytorch", "model": model, "batch": b, "threads": t,
                                 "impl": i, "error": "worker: " + pt_err} for i in cols[2:] if i not in have]
                mine = [r for r in pt_rows if r.get("batch") == b]
                pf = next((r for r in mine if r["impl"] == "torch-float" and r.get("ms")), None)
                w, r = plan_runs(pf["ms"] / 1e3, a.warmup, a.reps, a.budget) if pf else (a.warmup, a.reps)
                lb_rows, lb_err = run_json([a.lowbit, "bench", "models", "--model", model, "--batch", str(b),
                                            "--threads", str(t), "--reps", str(r), "--warmup", str(w), "--json"],
                                           wenv)
                for row in lb_rows:
                    row.setdefault("framework", "lowbit")
                    for k, v in (("model", model), ("batch", b), ("threads", t)):
                        row.setdefault(k, v)
                    row.setdefault("reps", r)
                    row.setdefault("warmup", w)
                if lb_err:
                    lb_rows.append({"bench": "models", "framework": "lowbit", "model": model, "batch": b,
                                    "threads": t, "impl": "lowbit", "error": lb_err})
                entries += mine + lb_rows
                case = summarize(model, b, t, mine + lb_rows, engines, peak)
                cases.append(case)
                by = {e["impl"]: e for e in mine + lb_rows if "impl" in e}
                best = case.get("torch_best_int8")
                vs = f"x{case['int8_speedup_vs_torch_best_int8']:.2f} ({best})" \
                    if "int8_speedup_vs_torch_best_int8" in case else "-"
                ratio = f"x{case['lowbit_int8_vs_float']:.2f}" if "lowbit_int8_vs_float" in case else "-"
                pk = f"{100 * case['lowbit_int8_peak_fraction']:.1f}%" if "lowbit_int8_peak_fraction" in case else "-"
                print(f"{model:<13}{b:>4}{t:>4}  " + " ".join(f"{fmt_ms(by.get(c)):>{w_}}" for c, w_ in zip(cols, widths))
                      + f"  {vs:>22} {ratio:>9} {pk:>8}", flush=True)
                if case.get("gops_mismatch"):
                    print(f"    note: lowbit's gops {case['gops']:.3f} != PyTorch's count {case['torch_gops']:.3f}",
                          flush=True)

    errors = [e for e in entries if "error" in e]
    if errors:
        print("errors:")
        seen = set()
        for e in errors:
            key = (e.get("impl"), e["error"])
            if key not in seen:
                seen.add(key)
                print(f"  {e.get('impl')}: {e['error']}")
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"machine": {"cpu": cpu, "cpus": ncpu, "flags": flags, "platform": platform.platform()},
                       "torch": info["torch"], "torchvision": info["torchvision"],
                       "torch_engines": info["engines"], "engines": engines,
                       "gomp_spincount": a.spin, "reps": a.reps, "warmup": a.warmup, "budget_s": a.budget,
                       "lowbit": a.lowbit, "peak": peak, "peak_error": peak_err,
                       "cases": cases, "entries": entries}, f, indent=1)
        print(f"wrote {a.out}")


def summarize(model, batch, threads, rows, engines, peak):
    """One case's times by impl and the ratios the table shows."""
    ok = {r["impl"]: r for r in rows if "impl" in r and "error" not in r and isinstance(r.get("ms"), (int, float))
          and r["ms"] > 0}
    case = {"model": model, "batch": batch, "threads": threads, "ms": {k: v["ms"] for k, v in ok.items()}}
    pt_gops = next((r["gops"] for r in rows if r.get("framework") == "pytorch" and r.get("gops")), None)
    lb_gops = next((r["gops"] for r in rows if r.get("framework") == "lowbit" and r.get("gops")), None)
    gops = lb_gops or pt_gops
    if gops:
        case["gops"] = gops
    if pt_gops:
        case["torch_gops"] = pt_gops
        if lb_gops and abs(lb_gops - pt_gops) > 0.01 * pt_gops:
            case["gops_mismatch"] = True
    q8 = {e: ok["torch-int8-" + e]["ms"] for e in engines if "torch-int8-" + e in ok}
    lb8, lbf = ok.get("lowbit-int8"), ok.get("lowbit-float")
    if q8:
        best = min(q8, key=q8.get)
        case["torch_best_int8"] = best
        if lb8:
            case["int8_speedup_vs_torch_best_int8"] = q8[best] / lb8["ms"]
    if lb8 and lbf:
        case["lowbit_int8_vs_float"] = lbf["ms"] / lb8["ms"]
    if lb8 and "torch-float" in ok:
        case["lowbit_int8_vs_torch_float"] = ok["torch-float"]["ms"] / lb8["ms"]
    pts = [p for p in peak if p.get("threads") == threads and isinstance(p.get("int8_gops"), (int, float))]
    same_isa = [p for p in pts if lb8 and p.get("isa") == lb8.get("isa")]
    if (same_isa or pts) and lb8 and gops:
        p = max(same_isa or pts, key=lambda p: p["int8_gops"])
        case["peak_int8_gops"] = p["int8_gops"]
        case["lowbit_int8_gops_per_s"] = gops / (lb8["ms"] / 1e3)
        case["lowbit_int8_peak_fraction"] = case["lowbit_int8_gops_per_s"] / p["int8_gops"]
    return case


if __name__ == "__main__":
    main()
