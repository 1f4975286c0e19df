"""The diffusion policy's cost: chunk inference latency per profile x batch x sampler, and one BC optimiser step.

Measures ``predict_chunk`` (joint normalisation + PointNet + U-Net denoising chain + unnormalisation) and one
behaviour-cloning step (forward, backward, AdamW) on inputs shaped as the env records them. Weights are random:
latency does not depend on training.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time


def benchmark_policy(profiles: list[str], batch_sizes: list[int], samplers: list[str], repeats: int = 5,
                     budget_s: float = 20.0, train_batch: int = 32, train_repeats: int = 3, skip_train: bool = False,
                     device: str = "cpu", threads: int = 0, seed: int = 0) -> dict:
    """Time inference (``repeats`` runs within ``budget_s`` per setting) and, unless ``skip_train``, the training
    step at ``train_batch`` (capped by the profile's batch size). Returns the report: device, torch, threads and
    one row per setting (times in ms)."""
    import torch

    from ...policies.diffusion import DiffusionPolicy
    from ..profile import Profile

    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    report: dict = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
        or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "inference": [],
        "train": [],
    }
    for name in profiles:
        profile = Profile.load(name).diffusion
        cfg = profile.policy
        torch.manual_seed(seed)
        max_batch = max(list(batch_sizes) + [min(train_batch, profile.pretrain.batch_size)])
        batch_all, stats = synthetic_batch(cfg, max_batch, seed)
        policy = DiffusionPolicy.from_stats(cfg, stats).to(dev)
        num_params = sum(p.numel() for p in policy.parameters())
        _log(f"[{name}] {num_params / 1e6:.1f} M parameters, Np={cfg.num_points}, U-Net {list(cfg.unet.down_dims)}")

        policy.eval()
        for batch_size in batch_sizes:
            obs = {k: v[:batch_size].to(dev) for k, v in batch_all["obs"].items()}
            for sampler in samplers:
                steps = len(policy.model.sampling_timesteps(sampler))
                gen = torch.Generator(device=dev).manual_seed(seed)
                timing = timed(lambda: policy.predict_chunk(obs, sampler=sampler, generator=gen),
                               repeats, budget_s, sync)
                report["inference"].append({"profile": name, "batch": batch_size, "sampler": sampler,
                                            "denoising_steps": steps, "params_m": round(num_params / 1e6, 2),
                                            "num_points": cfg.num_points, **timing})
                _log(f"[{name}] batch {batch_size:3d} {sampler}-{steps}: {timing['median_ms']:.1f} ms "
                     f"(min {timing['min_ms']:.1f}, {timing['runs']} runs)")

        if not skip_train:
            batch = min(train_batch, profile.pretrain.batch_size)
            policy.train()
            optimizer = torch.optim.AdamW(policy.parameters(), lr=profile.pretrain.lr,
                                          weight_decay=profile.pretrain.weight_decay)
            obs = {k: v[:batch].to(dev) for k, v in batch_all["obs"].items()}
            actions = batch_all["actions"][:batch].to(dev)

            def train_step() -> None:
                loss = policy.loss(actions, obs)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            timing = timed(train_step, train_repeats, budget_s * 3, sync)
            report["train"].append({"profile": name, "batch": batch, "params_m": round(num_params / 1e6, 2),
                                    "step_median_ms": timing["median_ms"], "step_min_ms": timing["min_ms"],
                                    "runs": timing["runs"]})
            _log(f"[{name}] train step batch {batch}: {timing['median_ms']:.0f} ms")
    return report


def timed(fn, repeats: int, budget_s: float, sync) -> dict[str, float | int]:
    """Run ``fn`` once to warm up, then up to ``repeats`` timed runs within ``budget_s`` (at least one); ms."""
    fn()
    sync()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times)}


def synthetic_batch(cfg, batch: int, seed: int):
    """Inputs of the shapes the env records (the last 4 x 12 x 32 points taxels, flag 1) and unit stats."""
    import numpy as np
    import torch

    from ...utils.point_layout import FLAG_CHANNEL, VALUE_CHANNEL

    gen = torch.Generator().manual_seed(seed)
    obs = {"joint_pos": torch.rand(batch, cfg.obs_steps, cfg.joint_dim, generator=gen) * 2 - 1}
    if cfg.use_point_cloud:
        cloud = torch.zeros(batch, cfg.obs_steps, cfg.num_points, cfg.point_channels)
        cloud[..., :3] = (torch.rand(batch, cfg.obs_steps, cfg.num_points, 3, generator=gen) * 2 - 1) * 0.3
        taxels = min(4 * 12 * 32, cfg.num_points // 2)
        cloud[..., -taxels:, VALUE_CHANNEL] = torch.rand(batch, cfg.obs_steps, taxels, generator=gen)
        cloud[..., -taxels:, FLAG_CHANNEL] = 1.0
        obs["point_cloud"] = cloud
    actions = torch.rand(batch, cfg.horizon_steps, cfg.action_dim, generator=gen) * 2 - 1
    unit = {"min": -np.ones(cfg.action_dim, np.float32), "max": np.ones(cfg.action_dim, np.float32)}
    joints = {"min": -np.ones(cfg.joint_dim, np.float32), "max": np.ones(cfg.joint_dim, np.float32)}
    return {"obs": obs, "actions": actions}, {"actions": unit, "joint_pos": joints}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
