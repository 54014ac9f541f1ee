#!/usr/bin/env python3
"""PyTorch/diffusers GPU baseline for sdiff's CUDA backend: eager and torch.compile, fp16, one GPU.

Loads the random-weight SD 1.5 pipeline written by tools/gpu_ref.py (--model, default /tmp/sd15; built
here first if the folder is missing) with torch_dtype=float16 on cuda, and measures:

  unet512        one UNet step at 512x512 with CFG: unet(sample[2,4,64,64], t, context[2,77,768]),
                 called exactly as StableDiffusionPipeline calls it; eager and
                 torch.compile(unet, mode="reduce-overhead") (compile time recorded, under a time limit)
  text_encoder   text_encoder(ids[2,77])[0]
  vae512         vae.decode(latents[1,4,64,64] / scaling_factor): one 512x512 image
  image512       pipe(P, negative_prompt="", 512x512, 50 PNDM steps, guidance 7.5) end to end (PIL
                 output, as users call it), eager and with the compiled UNet (pipe.unet = compiled)
  throughput     the same pipe call with num_images_per_prompt = 1, 2, 4, 8, 16 (eager), stopping at the
                 first OOM: seconds per call and images per minute
  unet1024       one UNet step at 1024x1024 with CFG (sample[2,4,128,128]), eager and compiled

Module timings use CUDA events around each call after warm-up, median of --runs (default 10);
end-to-end timings use time.perf_counter() between torch.cuda.synchronize() calls (median of
--image-runs, default 3). Every time has beside it the peak GPU memory of that measurement
(torch.cuda.max_memory_allocated after torch.cuda.reset_peak_memory_stats(); it includes the weights,
~2.0 GiB) and the memory allocated before it. For compiled UNet steps peak_mib also covers the
compile/CUDA-graph recording calls (replays allocate nothing; peak_mib_replay_only is the replay alone). Each measurement is its own try/except: an error is
recorded and the next one runs. Compiled measurements run last; torch._dynamo.reset() between shapes.

Output: a markdown table on stdout and one JSON file (--json, default bench_ref.json).
Default runtime on an H100: ~3 minutes (measured 172 s: two UNet compiles of ~54 s each), plus
~20 s to build the pipeline when the folder is missing; --budget-s (default
330) skips a compile that could not finish in time, and --compile-timeout (default 180 s) bounds each.

  python3 tools/bench_ref.py [--model /tmp/sd15] [--json bench_ref.json] [--runs 10]
                             [--no-compile] [--no-1024] [--quick]
"""
import argparse
import contextlib
import gc
import json
import os
import signal
import statistics
import sys
import time
import traceback

TOOLS = os.path.dirname(os.path.abspath(__file__))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

import gpu_ref  # noqa: E402  (torch-free at import time)

PROMPT = gpu_ref.PROMPT
NEGATIVE = gpu_ref.NEGATIVE
MIB = 2.0 ** 20
T0 = time.time()


def log(*a):
    print("[%6.1fs]" % (time.time() - T0), *a, flush=True)


@contextlib.contextmanager
def time_limit(seconds):
    """Raises TimeoutError in the main thread after `seconds` (SIGALRM)."""
    if not seconds or seconds <= 0:
        yield
        return

    def handler(signum, frame):
        raise TimeoutError("time limit of %ds exceeded" % seconds)

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Bench:
    def __init__(self, args):
        self.args = args
        self.res = {}            # name -> dict
        self.errors = {}         # name -> message
        self.order = []

    # ---- plumbing ----
    def measure(self, name, fn):
        import torch
        log("--- %s" % name)
        t0 = time.time()
        try:
            r = fn()
            if r is not None:
                r["wall_s"] = round(time.time() - t0, 2)
                self.res[name] = r
                log("    %s" % json.dumps({k: v for k, v in r.items() if k not in ("times_ms", "times_s")}))
            return True
        except Exception as e:  # noqa: BLE001 -- record and continue
            oom = isinstance(e, torch.cuda.OutOfMemoryError)
            traceback.print_exc()
            sys.stdout.flush()
            msg = "%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0][:300])
            self.errors[name] = msg
            self.res[name] = {"error": msg, "oom": oom, "wall_s": round(time.time() - t0, 2)}
            log("    FAILED (%s)" % msg)
            return False
        finally:
            self.order.append(name)
            gc.collect()
            torch.cuda.empty_cache()

    def skip(self, name, why):
        self.res[name] = {"skipped": why}
        self.order.append(name)
        log("--- %s: skipped (%s)" % (name, why))

    def remaining(self):
        return self.args.budget_s - (time.time() - T0)

    @staticmethod
    def _mem_start():
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / MIB

    @staticmethod
    def _mem_peak():
        import torch
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / MIB

    def cuda_time(self, fn, runs, warmup=3, before_each=None):
        """CUDA-event time of fn() per call, after `warmup` calls. Returns a result dict (ms)."""
        import torch
        alloc0 = self._mem_start()
        for _ in range(warmup):
            if before_each:
                before_each()
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            if before_each:
                before_each()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
                "runs": runs, "warmup": warmup, "times_ms": [round(t, 4) for t in times],
                "peak_mib": round(self._mem_peak(), 1), "alloc_before_mib": round(alloc0, 1)}

    def wall_time(self, fn, runs, warmup=1):
        import torch
        alloc0 = self._mem_start()
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(runs):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                "runs": runs, "warmup": warmup, "times_s": [round(t, 4) for t in times],
                "peak_mib": round(self._mem_peak(), 1), "alloc_before_mib": round(alloc0, 1)}

    # ---- setup ----
    def setup(self):
        a = self.args
        self.versions = gpu_ref.setup(a.ref_src)
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")
        self.torch = torch
        self.dev = torch.device("cuda")
        t0 = time.time()
        info = gpu_ref.ensure_pipeline(a.model, a.bpe)
        self.build_s = round(time.time() - t0, 2) if info is not None else None
        t0 = time.time()
        self.pipe = gpu_ref.load_pipeline(a.model, torch.float16, "cuda")
        self.load_s = round(time.time() - t0, 2)
        self.unet = self.pipe.unet
        procs = {type(p).__name__ for p in self.unet.attn_processors.values()}
        self.env = dict(self.versions, model=os.path.abspath(a.model), dtype="float16",
                        build_s=self.build_s, load_s=self.load_s, unet_attn_processors=sorted(procs),
                        text_encoder_attn=getattr(self.pipe.text_encoder.config, "_attn_implementation", None),
                        cudnn_benchmark=torch.backends.cudnn.benchmark,
                        fp16_reduced_precision_reduction=torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
                        weights_mib=round(torch.cuda.memory_allocated() / MIB, 1))
        log("env:", json.dumps(self.env))

    # ---- inputs ----
    def unet_inputs(self, res):
        torch = self.torch
        g = torch.Generator().manual_seed(1)
        h = res // 8
        sample = torch.randn((2, 4, h, h), generator=g).to(self.dev, torch.float16)
        ctx = torch.randn((2, 77, 768), generator=g).to(self.dev, torch.float16)
        t = torch.tensor(500, dtype=torch.long, device=self.dev)   # 0-dim int64, like the pipeline's t
        return sample, t, ctx

    def unet_fn(self, unet, res):
        torch = self.torch
        sample, t, ctx = self.unet_inputs(res)

        def fn():
            with torch.no_grad():
                return unet(sample, t, encoder_hidden_states=ctx, timestep_cond=None, cross_attention_kwargs=None,
                            added_cond_kwargs=None, return_dict=False)[0]
        return fn

    def pipe_fn(self, batch=1, steps=50):
        torch = self.torch

        def fn():
            return self.pipe(PROMPT, negative_prompt=NEGATIVE, height=512, width=512, num_inference_steps=steps,
                             guidance_scale=7.5, num_images_per_prompt=batch,
                             generator=torch.Generator().manual_seed(42)).images
        return fn

    # ---- eager ----
    def unet_eager(self, res):
        r = self.cuda_time(self.unet_fn(self.unet, res), self.args.runs, warmup=3)
        r.update(shape=[2, 4, res // 8, res // 8], mode="eager")
        return r

    def text_encoder(self):
        torch = self.torch
        tok = self.pipe.tokenizer
        ids = tok([NEGATIVE, PROMPT], padding="max_length", max_length=77, truncation=True,
                  return_tensors="pt").input_ids.to(self.dev)
        te = self.pipe.text_encoder

        def fn():
            with torch.no_grad():
                return te(ids)[0]
        r = self.cuda_time(fn, self.args.runs, warmup=3)
        r.update(shape=list(ids.shape))
        return r

    def vae512(self):
        torch = self.torch
        g = torch.Generator().manual_seed(2)
        lat = torch.randn((1, 4, 64, 64), generator=g).to(self.dev, torch.float16)
        vae = self.pipe.vae
        sf = vae.config.scaling_factor

        def fn():
            with torch.no_grad():
                return vae.decode(lat / sf, return_dict=False)[0]
        r = self.cuda_time(fn, self.args.runs, warmup=2)
        r.update(latents=list(lat.shape), image=[1, 3, 512, 512])
        return r

    def image512(self, tag):
        r = self.wall_time(self.pipe_fn(1, 50), self.args.image_runs, warmup=1)
        r.update(steps=50, cfg=7.5, size=512, batch=1, unet=tag, images_per_min=60.0 / r["median_s"])
        return r

    def throughput(self):
        torch = self.torch
        rows = []
        for b in self.args.batches:
            if self.remaining() < 30:
                rows.append({"batch": b, "skipped": "time budget"})
                break
            try:
                alloc0 = self._mem_start()
                self.pipe_fn(b, 2)()                       # warm-up: allocations at this batch size
                r = self.wall_time(self.pipe_fn(b, 50), self.args.tput_runs, warmup=0)
                r["alloc_before_mib"] = round(alloc0, 1)
                r.update(batch=b, images_per_min=60.0 * b / r["median_s"], s_per_image=r["median_s"] / b)
                rows.append(r)
                log("    batch %d: %.2f s/call, %.1f images/min, peak %.0f MiB" % (
                    b, r["median_s"], r["images_per_min"], r["peak_mib"]))
            except torch.cuda.OutOfMemoryError as e:
                rows.append({"batch": b, "oom": True, "error": str(e).splitlines()[0][:200],
                             "peak_mib": round(self._mem_peak(), 1)})
                log("    batch %d: OOM, stopping" % b)
                break
            finally:
                gc.collect()
                torch.cuda.empty_cache()
        ok = [r for r in rows if "images_per_min" in r]
        best = max(ok, key=lambda r: r["images_per_min"]) if ok else None
        return {"rows": rows, "largest_batch": ok[-1]["batch"] if ok else None,
                "images_per_min_at_largest": ok[-1]["images_per_min"] if ok else None,
                "best": {"batch": best["batch"], "images_per_min": best["images_per_min"]} if best else None}

    # ---- compiled ----
    def compile_limit(self):
        lim = min(self.args.compile_timeout, self.remaining() - 20)
        return int(lim)

    def reset_compiled(self):
        """Drops compiled code and CUDA-graph memory pools, so shapes do not share them."""
        torch = self.torch
        torch._dynamo.reset()
        try:
            from torch._inductor.cudagraph_trees import reset_cudagraph_trees
            reset_cudagraph_trees()
        except Exception:  # noqa: BLE001
            pass
        gc.collect()
        torch.cuda.empty_cache()

    def compiled_unet(self, res):
        """torch.compile(unet, mode='reduce-overhead') at one shape: compile (timed, under a limit),
        then the same CUDA-event timing. Leaves the compiled module in self.cunet."""
        torch = self.torch
        self.cunet = None
        self.reset_compiled()
        lim = self.compile_limit()
        if lim < 30:
            raise TimeoutError("not enough time budget left for a compile (%.0fs)" % self.remaining())
        cunet = torch.compile(self.unet, mode="reduce-overhead")
        fn = self.unet_fn(cunet, res)
        mark = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
        calls = []
        self._mem_start()
        with time_limit(lim):
            for _ in range(3):                # 1: dynamo + inductor; 2-3: CUDA graph warm-up + record
                if mark:
                    mark()
                t0 = time.perf_counter()
                fn()
                torch.cuda.synchronize()
                calls.append(time.perf_counter() - t0)
        compile_peak = self._mem_peak()
        r = self.cuda_time(fn, self.args.runs, warmup=2, before_each=mark)
        r.update(shape=[2, 4, res // 8, res // 8], mode="torch.compile(mode='reduce-overhead')",
                 compile_s=round(sum(calls), 2), first_calls_s=[round(c, 3) for c in calls],
                 compile_limit_s=lim, compile_peak_mib=round(compile_peak, 1))
        # CUDA-graph replays allocate nothing: the graph's memory pool was taken while recording (in the
        # first calls), so the replay-only peak understates. Report the larger of the two as peak_mib.
        r["peak_mib_replay_only"] = r["peak_mib"]
        r["peak_mib"] = max(r["peak_mib"], r["compile_peak_mib"])
        self.cunet = cunet
        return r

    def image512_compiled(self):
        if getattr(self, "cunet", None) is None:
            raise RuntimeError("no compiled 512 UNet (its compile failed or was skipped)")
        orig = self.pipe.unet
        self.pipe.unet = self.cunet
        try:
            lim = max(int(self.remaining() - 10), 30)
            with time_limit(lim):     # the warm-up call may recompile
                r = self.image512("torch.compile(mode='reduce-overhead')")
        finally:
            self.pipe.unet = orig
        return r

    # ---- run all ----
    def run(self):
        a = self.args
        self.measure("unet512_eager", lambda: self.unet_eager(512))
        self.measure("text_encoder", self.text_encoder)
        self.measure("vae512", self.vae512)
        self.measure("image512_eager", lambda: self.image512("eager"))
        self.measure("throughput_eager", self.throughput)
        if a.do_1024:
            self.measure("unet1024_eager", lambda: self.unet_eager(1024))
        if a.compile:
            self.measure("unet512_compiled", lambda: self.compiled_unet(512))
            if self.res.get("unet512_compiled", {}).get("error"):
                self.skip("image512_compiled", "compile failed")
            else:
                self.measure("image512_compiled", self.image512_compiled)
            self.cunet = None
            if a.do_1024:
                self.measure("unet1024_compiled", lambda: self.compiled_unet(1024))
                self.cunet = None
            try:
                self.reset_compiled()
            except Exception:  # noqa: BLE001
                pass

    # ---- report ----
    def table(self):
        R = self.res

        def g(name, key, fmt):
            r = R.get(name)
            if r is None:
                return "-"
            if "error" in r:
                return "ERR" + (" (OOM)" if r.get("oom") else "")
            if "skipped" in r:
                return "skipped"
            v = r.get(key)
            return fmt % v if v is not None else "-"

        def peak(name):
            return g(name, "peak_mib", "%.0f")

        lines = ["| measurement (fp16, %s) | eager | torch.compile | peak MiB (eager / compiled) |"
                 % self.env.get("gpu", "GPU"), "|---|---:|---:|---:|"]
        lines.append("| UNet step 512 (CFG, batch 2) | %s ms | %s ms | %s / %s |" % (
            g("unet512_eager", "median_ms", "%.2f"), g("unet512_compiled", "median_ms", "%.2f"),
            peak("unet512_eager"), peak("unet512_compiled")))
        if "unet1024_eager" in R or "unet1024_compiled" in R:
            lines.append("| UNet step 1024 (CFG, batch 2) | %s ms | %s ms | %s / %s |" % (
                g("unet1024_eager", "median_ms", "%.2f"), g("unet1024_compiled", "median_ms", "%.2f"),
                peak("unet1024_eager"), peak("unet1024_compiled")))
        lines.append("| Text encoder (batch 2, 77 tokens) | %s ms | - | %s |" % (
            g("text_encoder", "median_ms", "%.2f"), peak("text_encoder")))
        lines.append("| VAE decode 512 (batch 1) | %s ms | - | %s |" % (g("vae512", "median_ms", "%.2f"), peak("vae512")))
        lines.append("| Whole image 512, 50 steps CFG (end to end) | %s s | %s s | %s / %s |" % (
            g("image512_eager", "median_s", "%.3f"), g("image512_compiled", "median_s", "%.3f"),
            peak("image512_eager"), peak("image512_compiled")))
        tp = R.get("throughput_eager", {})
        for row in tp.get("rows", []):
            if "images_per_min" in row:
                lines.append("| Throughput batch %d (50 steps CFG 512) | %.1f img/min (%.2f s/call) | - | %.0f |" % (
                    row["batch"], row["images_per_min"], row["median_s"], row["peak_mib"]))
            else:
                lines.append("| Throughput batch %d | %s | - | %s |" % (
                    row["batch"], "OOM" if row.get("oom") else row.get("skipped", "ERR"),
                    "%.0f" % row["peak_mib"] if "peak_mib" in row else "-"))
        if "error" in tp:
            lines.append("| Throughput | ERR | - | - |")
        for n, label in (("unet512_compiled", "512"), ("unet1024_compiled", "1024")):
            r = R.get(n)
            if r and "compile_s" in r:
                lines.append("| torch.compile time, UNet %s (first 3 calls) | - | %.1f s | %.0f |" % (
                    label, r["compile_s"], r["compile_peak_mib"]))
        return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=gpu_ref.DEFAULTS["out"], help="pipeline folder written by gpu_ref.py")
    ap.add_argument("--bpe", default=gpu_ref.DEFAULTS["bpe"])
    ap.add_argument("--ref-src", default=gpu_ref.DEFAULTS["ref_src"])
    ap.add_argument("--json", default="bench_ref.json")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per module measurement (median)")
    ap.add_argument("--image-runs", type=int, default=3, help="timed runs of the whole 50-step image")
    ap.add_argument("--tput-runs", type=int, default=1, help="timed runs per throughput batch size")
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-1024", action="store_true")
    ap.add_argument("--compile-timeout", type=int, default=180, help="seconds, per compiled shape")
    ap.add_argument("--budget-s", type=float, default=330, help="skip compiles that would run past this")
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 runs, 1 image run, batches 1,2, "
                                                         "no 1024, no compile")
    a = ap.parse_args(argv)
    a.batches = [int(x) for x in a.batches.split(",") if x.strip()]
    if a.quick:
        a.runs, a.image_runs, a.tput_runs = min(a.runs, 3), 1, 1
        a.batches = [b for b in a.batches if b <= 2] or [1]
        a.no_compile = a.no_1024 = True
    a.compile = not a.no_compile
    a.do_1024 = not a.no_1024

    B = Bench(a)
    try:
        B.setup()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        log("setup failed; nothing measured")
        return 1
    B.run()
    out = {"env": B.env, "args": {k: v for k, v in vars(a).items()}, "results": B.res, "errors": B.errors,
           "order": B.order, "total_s": round(time.time() - T0, 1)}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(gpu_ref.jsonable(out), f, indent=1)
    print()
    print(B.table())
    print()
    log("total %.1fs; json: %s; errors: %s" % (time.time() - T0, a.json, json.dumps(B.errors) if B.errors else "none"))
    return 0 if not B.errors else 2


if __name__ == "__main__":
    sys.exit(main())
