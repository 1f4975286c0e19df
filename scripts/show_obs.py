#!/usr/bin/env python
"""Plot one env's policy observation: the merged visuo-tactile cloud (3D scatter) and the depth image.

    python scripts/show_obs.py [--task VTRefine-PegInHole-Aloha] [--steps 60] [--source camera|mesh] [--out obs.png]

The scripted expert drives the env for ``--steps`` control steps first (60: both parts grasped and lifted), so
the grippers, parts and pads show up. Visual points are grey, tactile points coloured by their reading; axes are
the camera frame (OpenCV: +z forward, +x right, +y down). A second PNG (``<out>_depth.png``) shows the depth
image of the scene camera. Kit-less, CPU by default.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--steps", type=int, default=60, help="expert control steps before the snapshot")
    parser.add_argument("--source", choices=("camera", "mesh"), default=None, help="visual point source (default: cfg)")
    parser.add_argument("--env_index", type=int, default=0)
    parser.add_argument("--num_envs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="obs.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vt_refine.app.envs import make_env
    from vt_refine.expert import start_expert

    overrides = [f"env.point_cloud.source={args.source}"] if args.source else []
    env = make_env(args.task, num_envs=args.num_envs, device=args.device, seed=args.seed, overrides=overrides)
    try:
        obs, _ = start_expert(env, seed=args.seed, warmup_steps=args.steps)
        cloud = obs["policy"]["point_cloud"][args.env_index, -1].cpu()  # newest history step, (Np, 5)
        camera = env.scene.sensors.get(env.cfg.point_cloud.camera_name)
        depth = None
        if camera is not None:
            depth = camera.data.output[env.cfg.point_cloud.depth_data_type].torch[args.env_index, ..., 0].cpu()
    finally:
        env.close()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tactile = cloud[:, 4] > 0.5
    visual = ~tactile & (cloud[:, :3].abs().amax(dim=-1) > 0)
    fig = plt.figure(figsize=(8, 7))
    ax = fig.add_subplot(projection="3d")
    v, t = cloud[visual], cloud[tactile]
    # camera frame drawn with z (depth) into the page: plot (x, z, -y) so "up" in the image is up on screen
    ax.scatter(v[:, 0], v[:, 2], -v[:, 1], s=2, c="0.55", label=f"visual ({int(visual.sum())})")
    sc = ax.scatter(t[:, 0], t[:, 2], -t[:, 1], s=3, c=t[:, 3], cmap="inferno", vmin=0.0, vmax=1.0,
                    label=f"tactile ({int(tactile.sum())})")
    fig.colorbar(sc, ax=ax, shrink=0.6, label="taxel reading (normalised)")
    ax.set_xlabel("x right [m]")
    ax.set_ylabel("z forward [m]")
    ax.set_zlabel("-y up [m]")
    shown = cloud[visual | tactile, :3]
    if len(shown):
        ax.set_box_aspect(tuple((shown.amax(0) - shown.amin(0)).clamp(min=1e-3)[[0, 2, 1]].tolist()))  # true scale
    ax.view_init(elev=15, azim=-70)  # near the camera's own view (image up = screen up), a little from the side
    ax.legend(loc="upper left")
    ax.set_title(f"{args.task}: policy point cloud, env {args.env_index}, step {args.steps} (camera frame)")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out}")
    if depth is not None:
        depth_out = out.with_name(out.stem + "_depth" + out.suffix)
        fig, ax = plt.subplots(figsize=(6, 4.5))
        masked = torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.full_like(depth, float("nan")))
        im = ax.imshow(masked.numpy(), cmap="viridis")
        fig.colorbar(im, ax=ax, label="depth [m]")
        ax.set_title(f"depth image {tuple(depth.shape[::-1])} px (misses blank)")
        fig.savefig(depth_out, dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {depth_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
