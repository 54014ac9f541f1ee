#!/usr/bin/env python3
"""The real-config SD 1.5 pipeline (random weights) and its PyTorch reference outputs on the GPU.

Runs on the GPU machine (PyTorch + transformers + safetensors + numpy; diffusers is NOT installed:
its source is read from .ref/src, which this script puts on sys.path itself). Offline.

1. Builds a random-weight SD 1.5 StableDiffusionPipeline at the real configs
     UNet          tools/configs/sd15_unet_config.json           (859.5 M params)
     VAE           tools/configs/sd15_vae_config.json            (83.7 M params)
     text encoder  tools/configs/sd15_text_encoder_config.json   (CLIP ViT-L/14 text, 123 M params)
     tokenizer     the full CLIP BPE (49408 ids) from .ref/clip_bpe_simple_vocab_16e6.txt.gz
     scheduler     tools/configs/sd15_scheduler_config.json      (SD 1.5's PNDM)
   (torch.manual_seed(0) before each model; safety_checker None) and saves it in the diffusers layout
   with fp16 weights to --out (default /tmp/sd15; ~2 GB). --reuse skips this when --out already holds
   a pipeline (model_index.json).
2. Reloads it with torch_dtype=float16 on cuda (how users run diffusers) and computes the references;
   then reloads it with torch_dtype=float32 (TF32 off) and computes the *_fp32 references from the
   SAME inputs. Writes --out/ref.safetensors (all F32) and --out/ref.json (parameters, versions,
   timings, per-tensor shape/mean/std/min/max/non-finite counts, file list).

Tensors in ref.safetensors (fp16 pipeline unless the name ends in _fp32):
  text.ids            [1,77]   token ids of P = "a photograph of an astronaut riding a horse" (as float)
  text.embeds         [1,77,768] text_encoder(text.ids)[0] (last_hidden_state), fp16 model
  text.neg_ids        [1,77]   token ids of ""
  text.neg_embeds     [1,77,768] text_encoder(text.neg_ids)[0], fp16 model
  text.embeds_fp32 / text.neg_embeds_fp32   the same from the fp32 model
  unet.sample         [2,4,64,64] randn(Generator().manual_seed(1)), rounded to fp16 (exact in both runs)
  unet.timestep       [1] = 500
  unet.context        [2,77,768] cat([text.neg_embeds, text.embeds]) of the fp16 model ([uncond, cond],
                      the pipeline's CFG order); the fp32 UNet gets this same tensor
  unet.out            [2,4,64,64] unet(sample, timestep, encoder_hidden_states=context).sample, fp16
  unet.out_fp32       the same inputs through the fp32 UNet
  vae.latents         [1,4,64,64] randn(Generator().manual_seed(2)), rounded to fp16 (std ~1, like the
                      UNet's latents); decoded as-is (no 1/scaling_factor), as gen_fixtures.py does
  vae.decoded         [1,3,512,512] vae.decode(vae.latents).sample, fp16 (range about [-1,1], unclamped)
  vae.decoded_fp32    the same through the fp32 VAE
  txt2img.image       [1,512,512,3] pipe(P, negative_prompt="", 512x512, 50 PNDM steps, guidance 7.5,
                      generator=torch.Generator().manual_seed(42), output_type="np"), fp16, in [0,1]
  txt2img.image_fp32  the same with the fp32 pipeline
  txt2img.noise / txt2img.noise_fp32   [1,4,64,64] the initial latents each run drew (diffusers
                      randn_tensor: torch.randn on the CPU generator IN THE RUN'S DTYPE). NOTE: CPU randn
                      in float16 draws different numbers from float32 randn with the same seed, so
                      txt2img.image and txt2img.image_fp32 start from different noise (not comparable)
  txt2img.image_fp32_samenoise  [1,512,512,3] the fp32 pipeline given latents=txt2img.noise (the fp16
                      run's noise): the like-for-like fp32 counterpart of txt2img.image
  txt2img.step_latents / txt2img.step_latents_fp32 / txt2img.step_latents_fp32_samenoise
                      [51,1,4,64,64] latents after each scheduler.step
  txt2img.timesteps   [51] the timesteps of the 51 UNet calls: PNDM with skip_prk_steps makes 51 PLMS
                      calls for 50 steps (981, 961, 961, 941, 921, ..., 1)

Usage (repo root, on the GPU machine):
  python3 tools/gpu_ref.py [--out /tmp/sd15] [--reuse] [--skip-fp32] [--device cuda]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

# torch-free helpers shared with the tiny-fixture generator
from gen_fixtures import RefBPE, build_clip_vocab, write_tokenizer_files  # noqa: E402

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = ""
HEIGHT = WIDTH = 512
STEPS = 50
CFG = 7.5
TXT2IMG_SEED = 42
MODEL_SEED = 0
UNET_SEED = 1
VAE_SEED = 2
UNET_T = 500.0
CLIP_VOCAB_FULL = 49408

CONFIGS = os.path.join(TOOLS, "configs")
DEFAULTS = {
    "out": "/tmp/sd15",
    "bpe": os.path.join(REPO, ".ref", "clip_bpe_simple_vocab_16e6.txt.gz"),
    "ref_src": os.path.join(REPO, ".ref", "src"),
    "unet_config": os.path.join(CONFIGS, "sd15_unet_config.json"),
    "vae_config": os.path.join(CONFIGS, "sd15_vae_config.json"),
    "text_encoder_config": os.path.join(CONFIGS, "sd15_text_encoder_config.json"),
    "scheduler_config": os.path.join(CONFIGS, "sd15_scheduler_config.json"),
}
# keys of sd15_text_encoder_config.json passed to CLIPTextConfig (the rest are documentation)
_CLIP_TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                   "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
                   "attention_dropout", "initializer_range", "initializer_factor", "pad_token_id",
                   "bos_token_id", "eos_token_id")


def log(*a):
    print(*a, flush=True)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: list(o) if isinstance(o, (tuple, set)) else str(o)))


# --------------------------------------------------------------------------------------------
# imports
# --------------------------------------------------------------------------------------------
def setup(ref_src=DEFAULTS["ref_src"]):
    """Puts .ref/src first on sys.path, imports torch/transformers/diffusers (checking that diffusers
    comes from ref_src) and returns a dict of versions."""
    ref_src = os.path.abspath(ref_src)
    if not os.path.isdir(os.path.join(ref_src, "diffusers")):
        raise FileNotFoundError("diffusers source not found under %s (carry .ref)" % ref_src)
    if ref_src not in sys.path:
        sys.path.insert(0, ref_src)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import torch
    import transformers
    import diffusers
    if not os.path.abspath(diffusers.__file__).startswith(ref_src):
        raise RuntimeError("imported diffusers from %s, not from %s" % (diffusers.__file__, ref_src))
    commit = os.environ.get("DIFFUSERS_COMMIT", "")
    for cand in (os.path.join(os.path.dirname(ref_src), "DIFFUSERS_COMMIT"), os.path.join(ref_src, "DIFFUSERS_COMMIT")):
        if not commit and os.path.isfile(cand):
            commit = open(cand).read().strip()
    if not commit:
        try:
            commit = subprocess.run(["git", "-C", os.path.join(ref_src, "diffusers"), "rev-parse", "HEAD"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            commit = ""
    v = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
         "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
         "transformers": transformers.__version__, "diffusers": diffusers.__version__,
         "diffusers_commit": commit or "unknown", "diffusers_source": ref_src}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        v.update(gpu=torch.cuda.get_device_name(0), gpu_mem_mib=p.total_memory // 2**20,
                 gpu_capability="%d.%d" % (p.major, p.minor), gpu_count=torch.cuda.device_count())
        try:
            v["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                         capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            pass
    return v


def tok_ids(tok, text):
    out = tok(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    return out.input_ids


# --------------------------------------------------------------------------------------------
# building and loading the pipeline
# --------------------------------------------------------------------------------------------
def build_tokenizer(bpe):
    """The full CLIP tokenizer (49408 ids) from the OpenAI bpe .gz, checked against RefBPE.
    Returns (tokenizer, vocab, merges, method)."""
    from transformers import CLIPTokenizer
    vocab, merges = build_clip_vocab(bpe, CLIP_VOCAB_FULL)
    ref = RefBPE(vocab, merges)
    src = tempfile.mkdtemp(prefix="sdiff-tok-")
    write_tokenizer_files(src, vocab, merges)
    errs = []
    try:
        for how, make in (
            ("from_pretrained(vocab.json, merges.txt)", lambda: CLIPTokenizer.from_pretrained(src)),
            ("CLIPTokenizer(vocab=, merges=)",
             lambda: CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=77)),
            ("CLIPTokenizer(vocab_file=, merges_file=)",
             lambda: CLIPTokenizer(vocab_file=os.path.join(src, "vocab.json"),
                                   merges_file=os.path.join(src, "merges.txt"), model_max_length=77)),
        ):
            try:
                tok = make()
                if tok.model_max_length != 77:
                    tok.model_max_length = 77
                if all(tok_ids(tok, p)[0].tolist() == ref.encode(p) for p in (PROMPT, NEGATIVE)):
                    return tok, vocab, merges, how
                errs.append("%s: ids differ from the reference BPE" % how)
            except Exception as e:  # noqa: BLE001
                errs.append("%s: %r" % (how, e))
    finally:
        shutil.rmtree(src, ignore_errors=True)
    raise RuntimeError("could not build a CLIPTokenizer matching the reference BPE: %s" % errs)


def _ensure_tokenizer_files(tdir, vocab, merges):
    """transformers 5 writes only tokenizer.json; sdiff's loader reads vocab.json + merges.txt.
    Writes ours where they are missing or differ (keeping transformers' other files)."""
    notes = []
    vj, mt = os.path.join(tdir, "vocab.json"), os.path.join(tdir, "merges.txt")
    if os.path.isfile(vj) and os.path.isfile(mt):
        saved_vocab = load_json(vj)
        saved_merges = [tuple(line.split()) for line in open(mt, encoding="utf-8").read().split("\n")
                        if line and not line.startswith("#version")]
        if saved_vocab == vocab and saved_merges == list(merges):
            return notes
        notes.append("vocab.json/merges.txt written by transformers differ from the SimpleTokenizer build; replaced")
    else:
        notes.append("transformers did not write vocab.json/merges.txt; wrote ours")
    tmp = tdir + ".ours"
    write_tokenizer_files(tmp, vocab, merges)
    for fn in os.listdir(tmp):
        if fn in ("vocab.json", "merges.txt") or not os.path.exists(os.path.join(tdir, fn)):
            shutil.move(os.path.join(tmp, fn), os.path.join(tdir, fn))
    shutil.rmtree(tmp, ignore_errors=True)
    return notes


def text_encoder_config(path=DEFAULTS["text_encoder_config"]):
    from transformers import CLIPTextConfig
    d = load_json(path)
    return CLIPTextConfig(**{k: d[k] for k in _CLIP_TEXT_KEYS if k in d})


def build_pipeline(out, bpe=DEFAULTS["bpe"], configs=None):
    """Builds the random-weight SD 1.5 pipeline and saves it (fp16 weights) to `out`.
    Returns a dict of facts for ref.json."""
    import torch
    from transformers import CLIPTextModel
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    cf = dict(DEFAULTS, **(configs or {}))
    info = {"timings_s": {}}
    t0 = time.time()
    tokenizer, vocab, merges, how = build_tokenizer(bpe)
    info["tokenizer_build"] = how
    info["timings_s"]["tokenizer"] = time.time() - t0

    t0 = time.time()
    torch.manual_seed(MODEL_SEED)
    unet = UNet2DConditionModel.from_config(load_json(cf["unet_config"]))
    torch.manual_seed(MODEL_SEED)
    vae = AutoencoderKL.from_config(load_json(cf["vae_config"]))
    torch.manual_seed(MODEL_SEED)
    text_encoder = CLIPTextModel(text_encoder_config(cf["text_encoder_config"]))
    scheduler = PNDMScheduler.from_config(load_json(cf["scheduler_config"]))
    for m in (unet, vae, text_encoder):
        m.to(torch.float16)
        m.eval()
    info["timings_s"]["init_random_weights_cpu"] = time.time() - t0
    info["param_counts"] = {n: sum(p.numel() for p in m.parameters())
                            for n, m in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder))}
    log("param counts:", info["param_counts"], "(%.1fs)" % info["timings_s"]["init_random_weights_cpu"])

    t0 = time.time()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    shutil.rmtree(out, ignore_errors=True)
    pipe.save_pretrained(out, safe_serialization=True)
    info["tokenizer_notes"] = _ensure_tokenizer_files(os.path.join(out, "tokenizer"), vocab, merges)
    for n in info["tokenizer_notes"]:
        log("NOTE:", n)
    info["timings_s"]["save_pretrained_fp16"] = time.time() - t0
    log("saved %s (%.1fs)" % (out, info["timings_s"]["save_pretrained_fp16"]))
    del pipe, unet, vae, text_encoder
    return info


def is_pipeline_dir(out):
    return all(os.path.exists(os.path.join(out, p)) for p in
               ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                "tokenizer", "scheduler/scheduler_config.json"))


def load_pipeline(out, dtype, device="cuda"):
    import torch
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=dtype, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    for name in ("unet", "vae", "text_encoder"):
        dts = {p.dtype for p in getattr(pipe, name).parameters()}
        if dts != {dtype}:
            raise RuntimeError("%s loaded with dtypes %s, wanted %s" % (name, dts, dtype))
    if device != "cpu" and str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return pipe


def ensure_pipeline(out, bpe=DEFAULTS["bpe"], rebuild=False):
    """Builds the pipeline folder unless it is already there (or rebuild). Returns build info or None."""
    if not rebuild and is_pipeline_dir(out):
        log("using the existing pipeline in", out)
        return None
    return build_pipeline(out, bpe)


def file_list(root):
    rows = []
    for d, _, files in os.walk(root):
        for f in sorted(files):
            p = os.path.join(d, f)
            rows.append((os.path.relpath(p, root), os.path.getsize(p)))
    return sorted(rows)


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------
class Refs:
    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.t = {}
        self.refs = {}
        self.meta = {"params": {}, "timings_s": self.t, "status": {}, "notes": []}
        self.inputs = {}

    def put(self, key, t):
        import numpy as np
        import torch
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(t))
        self.refs[key] = t.detach().to("cpu", torch.float32).contiguous().clone()

    def step(self, name, fn):
        log("=== %s" % name)
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 -- record and go on
            traceback.print_exc()
            sys.stdout.flush()
            self.meta["status"][name] = "FAILED: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else "")
            log("=== %s: FAILED after %.1fs" % (name, time.time() - t0))
            return False
        self.t[name] = round(time.time() - t0, 3)
        self.meta["status"][name] = "ok"
        log("=== %s: ok (%.2fs)" % (name, self.t[name]))
        return True

    def sync(self):
        import torch
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    # ---- setup and build ----
    def setup(self):
        self.meta["versions"] = setup(self.args.ref_src)
        import torch
        # fp32 references: full-precision fp32 (no TF32 in matmuls or cuDNN convolutions); the fp16
        # run is unaffected by these flags and otherwise uses PyTorch's defaults.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        self.device = torch.device(self.args.device)
        self.meta["versions"]["device"] = str(self.device)
        self.meta["precision"] = {
            "fp16": "torch_dtype=float16; PyTorch defaults (SDPA attention, "
                    "allow_fp16_reduced_precision_reduction=%s)"
                    % torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
            "fp32": "torch_dtype=float32 reloaded from the same fp16 files; TF32 off (matmul and cuDNN)"}
        log(json.dumps(self.meta["versions"]))

    def build(self):
        if self.args.reuse and is_pipeline_dir(self.out):
            log("--reuse: using the existing pipeline in", self.out)
            self.meta["notes"].append("pipeline reused from an earlier run (--reuse)")
            return
        info = build_pipeline(self.out, self.args.bpe)
        self.t.update({"build." + k: round(v, 3) for k, v in info.pop("timings_s").items()})
        self.meta["build"] = info

    def load(self, dtype_name):
        import torch
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[dtype_name]
        self.pipe = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.pipe = load_pipeline(self.out, dtype, self.device)
        self.dtype = dtype
        if dtype_name == "fp16":
            pipe = self.pipe
            self.meta["configs"] = {
                "unet": jsonable(dict(pipe.unet.config)), "vae": jsonable(dict(pipe.vae.config)),
                "text_encoder": jsonable(pipe.text_encoder.config.to_dict()),
                "scheduler": jsonable(dict(pipe.scheduler.config)),
                "param_counts": {n: sum(p.numel() for p in getattr(pipe, n).parameters())
                                 for n in ("unet", "vae", "text_encoder")}}
            ids = tok_ids(pipe.tokenizer, PROMPT)[0].tolist()
            vocab, merges = build_clip_vocab(self.args.bpe, CLIP_VOCAB_FULL)
            ok = ids == RefBPE(vocab, merges).encode(PROMPT)
            self.meta["checks"] = {"reloaded_tokenizer_matches_ref_bpe": ok}
            if not ok:
                log("WARNING: reloaded tokenizer ids differ from the reference BPE")

    # ---- inputs shared by both precisions (fp16-representable) ----
    def make_inputs(self):
        import torch
        g = torch.Generator().manual_seed(UNET_SEED)
        self.inputs["unet.sample"] = torch.randn((2, 4, 64, 64), generator=g).half().float()
        self.inputs["unet.timestep"] = torch.tensor([UNET_T])
        g = torch.Generator().manual_seed(VAE_SEED)
        self.inputs["vae.latents"] = torch.randn((1, 4, 64, 64), generator=g).half().float()
        for k, v in self.inputs.items():
            self.put(k, v)
        self.meta["params"].update(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=HEIGHT, width=WIDTH, num_inference_steps=STEPS,
            guidance_scale=CFG, txt2img_seed=TXT2IMG_SEED,
            txt2img_generator="torch.Generator().manual_seed(%d) (CPU)" % TXT2IMG_SEED,
            model_seed=MODEL_SEED, unet_sample_seed=UNET_SEED, unet_timestep=UNET_T, vae_latents_seed=VAE_SEED,
            inputs_note="unet.sample and vae.latents are torch.randn(...) rounded to fp16 and stored as F32, "
                        "so the fp16 and fp32 runs see identical values; unet.context is the fp16 text "
                        "encoder's output and feeds both UNet runs",
            noise_note="txt2img.noise (fp16 run) and txt2img.noise_fp32 differ: diffusers draws the initial "
                       "latents with torch.randn(dtype=run dtype) on the CPU generator; compare txt2img.image "
                       "with txt2img.image_fp32_samenoise",
            vae_note="vae.decoded = vae.decode(vae.latents).sample, latents passed as-is (the pipeline "
                     "divides by scaling_factor=0.18215 first)")

    # ---- text ----
    def text(self, sfx=""):
        import torch
        pipe = self.pipe
        with torch.no_grad():
            for key, text in (("text.", PROMPT), ("text.neg_", NEGATIVE)):
                ids = tok_ids(pipe.tokenizer, text)
                emb = pipe.text_encoder(ids.to(self.device))[0]
                self.sync()
                if not sfx:
                    self.put(key + "ids", ids.float())
                self.put(key + "embeds" + sfx, emb)
        if not sfx:
            self.meta["params"]["prompt_ids"] = self.refs["text.ids"][0].long().tolist()
            self.meta["params"]["negative_ids"] = self.refs["text.neg_ids"][0].long().tolist()
            self.inputs["unet.context"] = torch.cat([self.refs["text.neg_embeds"], self.refs["text.embeds"]])
            self.put("unet.context", self.inputs["unet.context"])

    # ---- UNet ----
    def unet(self, sfx=""):
        import torch
        d, dt = self.device, self.dtype
        with torch.no_grad():
            out = self.pipe.unet(self.inputs["unet.sample"].to(d, dt), self.inputs["unet.timestep"].to(d),
                                 encoder_hidden_states=self.inputs["unet.context"].to(d, dt)).sample
            self.sync()
        self.put("unet.out" + sfx, out)

    # ---- VAE ----
    def vae(self, sfx=""):
        import torch
        with torch.no_grad():
            dec = self.pipe.vae.decode(self.inputs["vae.latents"].to(self.device, self.dtype)).sample
            self.sync()
        self.put("vae.decoded" + sfx, dec)

    # ---- txt2img ----
    def txt2img(self, sfx="", latents=None):
        import torch
        from diffusers.utils.torch_utils import randn_tensor
        pipe = self.pipe
        if latents is None:
            self.put("txt2img.noise" + sfx, randn_tensor((1, 4, HEIGHT // 8, WIDTH // 8),
                                                        generator=torch.Generator().manual_seed(TXT2IMG_SEED),
                                                        device=self.device, dtype=self.dtype))
        else:
            latents = latents.to(self.device, self.dtype)
        steps, ts = [], []

        def cb(p, i, t, kw):
            steps.append(kw["latents"].detach().to("cpu", torch.float32, copy=True))
            ts.append(float(t))
            return {}

        self.sync()
        t0 = time.time()
        images = pipe(PROMPT, negative_prompt=NEGATIVE, height=HEIGHT, width=WIDTH, num_inference_steps=STEPS,
                      guidance_scale=CFG, generator=torch.Generator().manual_seed(TXT2IMG_SEED), output_type="np",
                      latents=latents, callback_on_step_end=cb).images
        self.sync()
        self.t["txt2img_call" + sfx] = round(time.time() - t0, 3)
        self.put("txt2img.image" + sfx, images)
        self.put("txt2img.step_latents" + sfx, torch.stack(steps))
        if not sfx:
            self.put("txt2img.timesteps", torch.tensor(ts))
            self.meta["params"]["txt2img_timesteps"] = ts
            self.meta["params"]["scheduler_config_used"] = jsonable(dict(pipe.scheduler.config))
        log("txt2img%s: %s mean=%.4f clamped=%.3f (pipe call %.2fs, includes a per-step latent copy)" % (
            sfx, images.shape, float(images.mean()), float(((images <= 0) | (images >= 1)).mean()),
            self.t["txt2img_call" + sfx]))

    # ---- output ----
    def compare(self):
        """fp16 vs fp32 differences, for the record (the lead compares sdiff against both)."""
        import torch
        cmp = {}
        for a, b in (("text.embeds", "text.embeds_fp32"), ("unet.out", "unet.out_fp32"),
                     ("vae.decoded", "vae.decoded_fp32"), ("txt2img.image", "txt2img.image_fp32_samenoise"),
                     ("txt2img.image", "txt2img.image_fp32")):
            if a in self.refs and b in self.refs:
                x, y = self.refs[a].double(), self.refs[b].double()
                fin = torch.isfinite(x) & torch.isfinite(y)
                dif = (x - y)[fin]
                cmp[a + " vs " + b] = {"max_abs": float(dif.abs().max()) if dif.numel() else None,
                          "mean_abs": float(dif.abs().mean()) if dif.numel() else None,
                          "rel_l2": float(dif.norm() / max(float(y[fin].norm()), 1e-30)) if dif.numel() else None}
        self.meta["fp16_vs_fp32"] = cmp
        log("fp16 vs fp32:", json.dumps(cmp))

    def write(self):
        import torch
        from safetensors.torch import save_file
        stats = {}
        for k, v in sorted(self.refs.items()):
            fin = torch.isfinite(v)
            vf = v[fin].double()
            stats[k] = {"shape": list(v.shape), "nonfinite": int((~fin).sum()),
                        "mean": float(vf.mean()) if vf.numel() else None,
                        "std": float(vf.std()) if vf.numel() > 1 else None,
                        "min": float(vf.min()) if vf.numel() else None,
                        "max": float(vf.max()) if vf.numel() else None}
            if stats[k]["nonfinite"]:
                log("WARNING: %s has %d non-finite values" % (k, stats[k]["nonfinite"]))
        self.meta["tensors"] = stats
        path = os.path.join(self.out, "ref.safetensors")
        save_file(dict(sorted(self.refs.items())), path, metadata={"prompt": PROMPT, "format": "sdiff gpu_ref"})
        self.meta["files"] = [{"path": p, "bytes": n} for p, n in file_list(self.out) if p != "ref.json"]
        with open(os.path.join(self.out, "ref.json"), "w") as f:
            json.dump(jsonable(self.meta), f, indent=1, sort_keys=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULTS["out"])
    ap.add_argument("--bpe", default=DEFAULTS["bpe"])
    ap.add_argument("--ref-src", default=DEFAULTS["ref_src"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--reuse", action="store_true", help="do not rebuild the pipeline if --out holds one")
    ap.add_argument("--skip-fp32", action="store_true", help="fp16 references only")
    args = ap.parse_args(argv)
    t_all = time.time()
    R = Refs(args)
    if not R.step("setup", R.setup):
        return 1
    if not R.step("build+save fp16", R.build):
        return 1
    if not R.step("load fp16", lambda: R.load("fp16")):
        return 1
    R.step("inputs", R.make_inputs)
    ok_text = R.step("text fp16", R.text)
    if ok_text:
        R.step("unet fp16", R.unet)
    R.step("vae fp16", R.vae)
    R.step("txt2img fp16", R.txt2img)
    if not args.skip_fp32:
        if R.step("load fp32", lambda: R.load("fp32")):
            R.step("text fp32", lambda: R.text("_fp32"))
            if ok_text:
                R.step("unet fp32", lambda: R.unet("_fp32"))
            R.step("vae fp32", lambda: R.vae("_fp32"))
            R.step("txt2img fp32", lambda: R.txt2img("_fp32"))
            if "txt2img.noise" in R.refs:
                R.step("txt2img fp32 same noise",
                       lambda: R.txt2img("_fp32_samenoise", latents=R.refs["txt2img.noise"]))
    R.step("compare", R.compare)
    R.t["total"] = round(time.time() - t_all, 3)
    ok = R.step("write", R.write)
    log("\ntimings (s):")
    for k, v in R.t.items():
        log("  %-32s %8.2f" % (k, v))
    log("\nfiles under %s:" % R.out)
    for p, n in file_list(R.out):
        log("  %12d  %s" % (n, p))
    log("\ntensors in ref.safetensors:")
    for k, s in sorted(R.meta.get("tensors", {}).items()):
        log("  %-28s %-18s mean=%-11.4g std=%-11.4g nonfinite=%d" % (k, s["shape"], s["mean"] or 0, s["std"] or 0,
                                                                      s["nonfinite"]))
    failed = {k: v for k, v in R.meta["status"].items() if v != "ok"}
    log("SUMMARY: %s" % ("all ok" if not failed else "FAILED: " + json.dumps(failed)))
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
