#!/usr/bin/env python3
"""PyTorch CPU eager baseline for sdiff's CPU speed target.

Builds a random-weight UNet2DConditionModel at the REAL SD 1.5 config
(tools/configs/sd15_unet_config.json) with torch.manual_seed(0) in fp32, saves it in the diffusers
layout to --out (config.json + diffusion_pytorch_model.safetensors, plus io.safetensors holding the
benchmark's inputs and output) so the C benchmark can load the same weights and compare, then times

    unet(sample[2,4,64,64], t=500, encoder_hidden_states[2,77,768])

under torch.inference_mode() with torch.set_num_threads(--threads): 1 warm-up + --runs timed runs
(default 3). Prints ONE JSON line: median seconds, all times, peak RSS (getrusage; the whole
process, model build and save included), GFLOP of one call (torch.utils.flop_counter.FlopCounterMode)
and the achieved GFLOP/s; --json also writes it to a file.

--vae adds the SD VAE decode at 512x512 (latents [1,4,64,64] -> image [1,3,512,512]) with the real
SD VAE config (tools/configs/sd15_vae_config.json), saved to --vae-out the same way.
--skip-unet times the VAE only.

diffusers is imported from .ref/src (it need not be installed). Runs on CPU only.

  python3 tools/bench_cpu_ref.py [--threads 16] [--out /tmp/sd15-unet] [--vae] [--json out.json]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except Exception:  # noqa: BLE001
        return None


def peak_rss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20   # Linux: KiB, macOS: bytes


def count_gflop(fn):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    try:
        with FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e9
    except Exception as e:  # noqa: BLE001
        print("flop counting failed: %r" % e, file=sys.stderr)
        return None


def bench(fn, runs):
    fn()                                    # warm-up
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def load_config(path):
    with open(path) as f:
        return json.load(f)


def run_unet(args, torch):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    cfg = load_config(args.config)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(cfg).to(torch.float32).eval()
    build_s = time.perf_counter() - t0
    nparams = sum(p.numel() for p in unet.parameters())
    g = torch.Generator().manual_seed(1)
    sample = torch.randn((args.batch, 4, 64, 64), generator=g)
    context = torch.randn((args.batch, 77, cfg["cross_attention_dim"]), generator=g)
    t = torch.tensor(500)

    def call():
        with torch.inference_mode():
            return unet(sample, t, encoder_hidden_states=context).sample

    rss_before = rss_mb()
    times, out = bench(call, args.runs)
    res = {"model": "unet", "config": os.path.relpath(args.config, REPO), "params": nparams,
           "batch": args.batch, "sample": list(sample.shape), "timestep": 500,
           "context": list(context.shape), "median_s": statistics.median(times), "times_s": times,
           "rss_before_call_mb": rss_before, "peak_rss_mb": peak_rss_mb(), "build_s": build_s}
    gf = count_gflop(call)
    res["gflop"] = gf
    res["gflop_per_s"] = gf / res["median_s"] if gf else None
    if not args.no_save:
        os.makedirs(args.out, exist_ok=True)
        unet.save_pretrained(args.out, safe_serialization=True)
        save_file({"sample": sample, "timestep": t.reshape(1).float(), "context": context,
                   "out": out.contiguous()}, os.path.join(args.out, "io.safetensors"))
        res["saved_to"] = args.out
    return res


def run_vae(args, torch):
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file
    cfg = load_config(args.vae_config)
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(cfg).to(torch.float32).eval()
    nparams = sum(p.numel() for p in vae.decoder.parameters()) + sum(p.numel() for p in vae.post_quant_conv.parameters())
    g = torch.Generator().manual_seed(2)
    lat = torch.randn((1, 4, 64, 64), generator=g)

    def call():
        with torch.inference_mode():
            return vae.decode(lat).sample

    rss_before = rss_mb()
    times, out = bench(call, args.runs)
    res = {"model": "vae_decode", "config": os.path.relpath(args.vae_config, REPO),
           "decoder_params": nparams, "latents": list(lat.shape), "image": list(out.shape),
           "median_s": statistics.median(times), "times_s": times,
           "rss_before_call_mb": rss_before, "peak_rss_mb": peak_rss_mb()}
    gf = count_gflop(call)
    res["gflop"] = gf
    res["gflop_per_s"] = gf / res["median_s"] if gf else None
    if not args.no_save:
        os.makedirs(args.vae_out, exist_ok=True)
        vae.save_pretrained(args.vae_out, safe_serialization=True)
        save_file({"latents": lat, "out": out.contiguous()}, os.path.join(args.vae_out, "io.safetensors"))
        res["saved_to"] = args.vae_out
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--config", default=os.path.join(REPO, "tools", "configs", "sd15_unet_config.json"))
    ap.add_argument("--out", default="/tmp/sd15-unet")
    ap.add_argument("--vae", action="store_true", help="also time the SD VAE decode at 512x512")
    ap.add_argument("--skip-unet", action="store_true")
    ap.add_argument("--vae-config", default=os.path.join(REPO, "tools", "configs", "sd15_vae_config.json"))
    ap.add_argument("--vae-out", default="/tmp/sd15-vae")
    ap.add_argument("--no-save", action="store_true", help="do not write the weights")
    ap.add_argument("--json", default=None, help="also write the JSON result here")
    ap.add_argument("--ref-src", default=os.path.join(REPO, ".ref", "src"))
    args = ap.parse_args(argv)

    sys.path.insert(0, os.path.abspath(args.ref_src))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import torch
    import diffusers
    torch.set_num_threads(args.threads)

    result = {"torch": torch.__version__, "diffusers": diffusers.__version__, "device": "cpu",
              "dtype": "float32", "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "machine": platform.machine(), "processor": platform.processor(),
              "mkldnn": torch.backends.mkldnn.is_available()}
    if not args.skip_unet:
        result["unet"] = run_unet(args, torch)
        result["median_s"] = result["unet"]["median_s"]
    if args.vae or args.skip_unet:
        result["vae"] = run_vae(args, torch)
    result["peak_rss_mb"] = peak_rss_mb()
    line = json.dumps(result)
    print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
