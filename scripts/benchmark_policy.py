#!/usr/bin/env python3
"""Benchmark the diffusion policy: chunk inference latency and training step time; prints JSON.

Measures ``predict_chunk`` (joint normalisation + PointNet + U-Net denoising chain + unnormalisation)
for each profile x batch size x sampler (DDPM-K vs DDIM-Kd), and one optimiser step of behaviour
cloning (forward, backward, AdamW). Weights are random: latency does not depend on training.

Example:
    python scripts/benchmark_policy.py                       # quick + paper, batch 1 and 16, CPU
    python scripts/benchmark_policy.py --profiles quick --device cuda --output bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["quick", "paper"],
                        help="profile names (config/<name>.yaml) or YAML paths")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16], help="inference batch sizes")
    parser.add_argument("--samplers", nargs="+", default=["ddpm", "ddim"], choices=["ddpm", "ddim"])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting (after one warm-up)")
    parser.add_argument("--budget-s", type=float, default=20.0,
                        help="stop repeating a setting once this many seconds were spent on it (>= 1 run)")
    parser.add_argument("--train-batch", type=int, default=32,
                        help="batch of the timed training step, capped by the profile's batch size "
                             "(the paper batch of 256 needs ~15 GB of PointNet activations on CPU)")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--skip-train", action="store_true", help="only measure inference")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _timed(fn, repeats: int, budget_s: float, sync) -> dict[str, float | int]:
    """Run ``fn`` once to warm up, then up to ``repeats`` timed runs within ``budget_s``; times in ms."""
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

    from vt_refine.utils.point_layout import FLAG_CHANNEL, VALUE_CHANNEL

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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    from vt_refine.app.profile import Profile
    from vt_refine.policies.diffusion import DiffusionPolicy

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    report: dict = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "inference": [],
        "train": [],
    }
    for name in args.profiles:
        profile = Profile.load(name).diffusion
        cfg = profile.policy
        torch.manual_seed(args.seed)
        max_batch = max(args.batch_sizes + [min(args.train_batch, profile.pretrain.batch_size)])
        batch_all, stats = synthetic_batch(cfg, max_batch, args.seed)
        policy = DiffusionPolicy.from_stats(cfg, stats).to(device)
        num_params = sum(p.numel() for p in policy.parameters())
        _log(f"[{name}] {num_params / 1e6:.1f} M parameters, Np={cfg.num_points}, U-Net {list(cfg.unet.down_dims)}")

        policy.eval()
        for batch_size in args.batch_sizes:
            obs = {k: v[:batch_size].to(device) for k, v in batch_all["obs"].items()}
            for sampler in args.samplers:
                steps = len(policy.model.sampling_timesteps(sampler))
                gen = torch.Generator(device=device).manual_seed(args.seed)
                timing = _timed(lambda: policy.predict_chunk(obs, sampler=sampler, generator=gen),
                                args.repeats, args.budget_s, sync)
                row = {"profile": name, "batch": batch_size, "sampler": sampler, "denoising_steps": steps,
                       "params_m": round(num_params / 1e6, 2), "num_points": cfg.num_points, **timing}
                report["inference"].append(row)
                _log(f"[{name}] batch {batch_size:3d} {sampler}-{steps}: {timing['median_ms']:.1f} ms "
                     f"(min {timing['min_ms']:.1f}, {timing['runs']} runs)")

        if not args.skip_train:
            train_batch = min(args.train_batch, profile.pretrain.batch_size)
            policy.train()
            optimizer = torch.optim.AdamW(policy.parameters(), lr=profile.pretrain.lr,
                                          weight_decay=profile.pretrain.weight_decay)
            obs = {k: v[:train_batch].to(device) for k, v in batch_all["obs"].items()}
            actions = batch_all["actions"][:train_batch].to(device)

            def train_step() -> None:
                loss = policy.loss(actions, obs)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            timing = _timed(train_step, args.train_repeats, args.budget_s * 3, sync)
            report["train"].append({"profile": name, "batch": train_batch, "params_m": round(num_params / 1e6, 2),
                                    "step_median_ms": timing["median_ms"], "step_min_ms": timing["min_ms"],
                                    "runs": timing["runs"]})
            _log(f"[{name}] train step batch {train_batch}: {timing['median_ms']:.0f} ms")
        del policy, batch_all

    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
