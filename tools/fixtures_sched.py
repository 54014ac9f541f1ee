"""Scheduler and torch.randn fixtures for tests/test_sched.c (diffusers is the oracle).

tools/gen_fixtures.py calls fixtures_sched.generate(out_dir) on a machine with PyTorch and
diffusers. It writes JSON (every float as the shortest decimal that rounds back to the same
float32, so C's strtof() recovers it bit for bit):

  randn.json           torch.randn from torch.Generator().manual_seed(seed) on the CPU, for
                       sizes on both of ATen's paths (numel < 16, == 16, % 16 != 0, large) and
                       for a generator used by several calls in a row.
  sched_cases.json     {"cases": [names], "alphas_cumprod_sd15": [...1000 floats...]}
  sched_<name>.json    one trajectory: the scheduler class and config, steps, seed, latent shape,
                       strength (img2img) and eta, the timesteps, sigmas, init_noise_sigma, the
                       initial latents and the sample after every step.

The trajectories run the scheduler exactly as StableDiffusion[Img2Img]Pipeline does, with the
same generator for the initial noise, the img2img encoder sample and noise, and every
scheduler.step(..., generator=g) call, and with a synthetic model that tests/test_sched.c
computes identically in float32:
    eps = 0.3 * tanh(x) + 0.05 * cos(t / 100) + 0.1 * pattern,  pattern[k] = ((k % 7) - 3) / 3
with x the scaled model input and t the timestep, as float32.
"""
import inspect
import json
import os

import numpy as np
import torch

# Stable Diffusion 1.5's scheduler/scheduler_config.json
SD15 = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# name, target class, config overrides (present keys), steps, seed, shape, strength, eta, sampler name in C
CASES = [
    ("pndm", "PNDMScheduler", {}, 10, 1, [1, 4, 4, 4], None, 0.0, "default"),
    ("pndm_prk", "PNDMScheduler", {"skip_prk_steps": False}, 10, 2, [1, 4, 4, 4], None, 0.0, "pndm"),
    ("ddim", "DDIMScheduler", {}, 10, 3, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("ddim_linspace", "DDIMScheduler", {"timestep_spacing": "linspace"}, 10, 4, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("ddim_trailing", "DDIMScheduler", {"timestep_spacing": "trailing"}, 10, 5, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("ddim_v", "DDIMScheduler", {"prediction_type": "v_prediction"}, 10, 6, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("ddim_eta", "DDIMScheduler", {}, 10, 7, [1, 4, 4, 4], None, 0.5, "ddim"),
    ("euler", "EulerDiscreteScheduler", {}, 10, 8, [1, 4, 4, 4], None, 0.0, "euler"),
    ("euler_leading", "EulerDiscreteScheduler", {"timestep_spacing": "leading"}, 10, 9, [1, 4, 4, 4], None, 0.0, "euler"),
    ("euler_karras", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, 10, 10, [1, 4, 4, 4], None, 0.0, "euler"),
    ("euler_v", "EulerDiscreteScheduler", {"prediction_type": "v_prediction"}, 10, 11, [1, 4, 4, 4], None, 0.0, "euler"),
    ("euler_a", "EulerAncestralDiscreteScheduler", {}, 10, 12, [2, 4, 4, 4], None, 0.0, "euler_a"),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {}, 10, 13, [1, 4, 4, 4], None, 0.0, "dpmpp_2m"),
    ("dpmpp_2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 10, 14, [1, 4, 4, 4], None, 0.0,
     "dpmpp_2m_karras"),
    ("dpmpp_2m_sigma_min", "DPMSolverMultistepScheduler",
     {"final_sigmas_type": "sigma_min", "lower_order_final": False}, 20, 15, [1, 4, 4, 4], None, 0.0, "dpmpp_2m"),
    ("ddpm", "DDPMScheduler", {}, 10, 16, [1, 4, 4, 4], None, 0.0, "ddpm"),
    ("img2img_pndm", "PNDMScheduler", {}, 10, 17, [1, 4, 4, 4], 0.6, 0.0, "default"),
    ("img2img_ddim", "DDIMScheduler", {}, 10, 18, [1, 4, 4, 4], 0.6, 0.0, "ddim"),
    ("img2img_euler_a", "EulerAncestralDiscreteScheduler", {}, 10, 19, [1, 4, 4, 4], 0.6, 0.0, "euler_a"),
    ("img2img_dpmpp_2m_karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, 10, 20, [1, 4, 4, 4],
     0.6, 0.0, "dpmpp_2m_karras"),
    # the clamp of clip_sample, and the prediction types each step folds into its coefficients
    ("ddim_clip", "DDIMScheduler", {"clip_sample": True}, 10, 21, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("ddpm_clip", "DDPMScheduler", {"clip_sample": True, "clip_sample_range": 0.8}, 10, 22, [1, 4, 4, 4], None, 0.0,
     "ddpm"),
    ("ddim_sample", "DDIMScheduler", {"prediction_type": "sample"}, 10, 23, [1, 4, 4, 4], None, 0.0, "ddim"),
    ("pndm_v", "PNDMScheduler", {"prediction_type": "v_prediction"}, 10, 24, [1, 4, 4, 4], None, 0.0, "pndm"),
    ("pndm_prk_v", "PNDMScheduler", {"skip_prk_steps": False, "prediction_type": "v_prediction"}, 10, 25,
     [1, 4, 4, 4], None, 0.0, "pndm"),
    ("dpmpp_2m_v", "DPMSolverMultistepScheduler", {"prediction_type": "v_prediction"}, 10, 26, [1, 4, 4, 4], None,
     0.0, "dpmpp_2m"),
    ("dpmpp_2m_sample", "DPMSolverMultistepScheduler", {"prediction_type": "sample"}, 10, 27, [1, 4, 4, 4], None,
     0.0, "dpmpp_2m"),
    ("ddpm_v", "DDPMScheduler", {"prediction_type": "v_prediction"}, 10, 28, [1, 4, 4, 4], None, 0.0, "ddpm"),
]

RANDN_CASES = [  # (seed, [numel of each call, in order, one generator])
    (0, [1]), (0, [3]), (0, [15]), (0, [16]), (0, [17]), (0, [20]), (0, [64]), (42, [1000]),
    (1234, [4 * 16 * 32]), (7, [3, 20, 5, 1, 33]), (2**32 + 5, [16]),
]


def _f(v):
    """The shortest decimal that rounds to the same float32."""
    return float(str(np.float32(v)))


def _fl(t):
    return [_f(v) for v in torch.as_tensor(t).detach().to(torch.float32).reshape(-1).tolist()]


def _dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))


def _model(x, t, pattern):
    tt = torch.as_tensor(t).to(torch.float32).reshape(())
    return 0.3 * torch.tanh(x) + 0.05 * torch.cos(tt / 100) + 0.1 * pattern


def _run_case(name, cls_name, overrides, steps, seed, shape, strength, eta, sampler):
    import diffusers

    base = diffusers.PNDMScheduler.from_config(SD15)       # the loaded scheduler
    cls = getattr(diffusers, cls_name)
    sch = cls.from_config(base.config, **overrides)         # pipe.scheduler = X.from_config(...)
    sch.set_timesteps(steps)
    numel = int(np.prod(shape))
    pattern = ((torch.arange(numel) % 7) - 3).to(torch.float32).div(3).reshape(shape)
    g = torch.Generator().manual_seed(seed)
    out = {"name": name, "class": cls_name, "sampler": sampler, "config": dict(SD15, **overrides),
           "steps": steps, "seed": seed, "shape": shape, "strength": strength, "eta": eta}
    timesteps = sch.timesteps
    if strength is None:
        x = torch.randn(shape, generator=g, dtype=torch.float32) * sch.init_noise_sigma
    else:
        # StableDiffusionImg2ImgPipeline.get_timesteps + prepare_latents
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sch.timesteps[t_start * sch.order:]
        if hasattr(sch, "set_begin_index"):
            sch.set_begin_index(t_start * sch.order)
        mean = torch.from_numpy((0.5 * np.sin(np.arange(numel))).astype(np.float32)).reshape(shape)
        out["latent_mean"] = _fl(mean)
        latents = mean + 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)  # latent_dist.sample
        noise = torch.randn(shape, generator=g, dtype=torch.float32)
        x = sch.add_noise(latents, noise, timesteps[:1].repeat(shape[0]))
    out["timesteps"] = _fl(timesteps)
    if hasattr(sch, "sigmas") and sch.sigmas is not None and len(sch.sigmas) == len(sch.timesteps) + 1:
        out["sigmas"] = _fl(sch.sigmas)
    out["init_noise_sigma"] = _f(float(sch.init_noise_sigma))
    out["init"] = _fl(x)
    params = inspect.signature(sch.step).parameters
    kw = {}
    if "generator" in params:
        kw["generator"] = g
    if "eta" in params:
        kw["eta"] = eta
    samples = []
    for t in timesteps:
        inp = sch.scale_model_input(x, t)
        eps = _model(inp, t, pattern)
        x = sch.step(eps, t, x, return_dict=False, **kw)[0]
        samples.append(_fl(x))
    out["samples"] = samples
    return out


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "unknown"
    rn = {"torch": torch.__version__, "cpu_capability": cap, "cases": []}
    for seed, calls in RANDN_CASES:
        g = torch.Generator().manual_seed(seed)
        vals = []
        for n in calls:
            vals += _fl(torch.randn(n, generator=g, dtype=torch.float32))
        rn["cases"].append({"seed": seed, "calls": calls, "values": vals})
    _dump(os.path.join(out_dir, "randn.json"), rn)

    import diffusers

    base = diffusers.PNDMScheduler.from_config(SD15)
    names = []
    for case in CASES:
        data = _run_case(*case)
        _dump(os.path.join(out_dir, "sched_%s.json" % case[0]), data)
        names.append(case[0])
    _dump(os.path.join(out_dir, "sched_cases.json"),
          {"diffusers": diffusers.__version__, "cases": names, "alphas_cumprod_sd15": _fl(base.alphas_cumprod)})


if __name__ == "__main__":
    import sys
    generate(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
