"""Evaluate a checkpoint (pre-trained or DPPO fine-tuned) on a task, optionally with a visualiser.

    python scripts/play.py --task VTRefine-PegInHole-Aloha --checkpoint <final.pt | model_N.pt> --num_episodes 8 \
        [--viz newton|rerun|viser|none] [--device cpu]

Prints the success rate and its 95% interval and writes them as JSON (``--output``). Visualisers are Isaac Lab
3.0's (``--viz``, passed to its launcher): ``none`` (default) runs headless anywhere; ``newton`` opens an OpenGL
window (needs a display); ``rerun`` and ``viser`` stream to a browser viewer from a local server.
"""

import argparse
import json
import sys


def main(argv=None) -> int:
    from isaaclab.app import add_launcher_args, launch_simulation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--num_episodes", type=int, default=8)
    parser.add_argument("--num_envs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--output", default=None, help="write the result JSON here")
    parser.add_argument("--plots", default=None, help="folder for tactile plots of one evaluation episode")
    add_launcher_args(parser)  # --device, --viz/--visualizer, ...
    args = parser.parse_args(argv)

    from vt_refine.app.envs import make_env_cfg
    from vt_refine.app.evaluate import evaluate_policy
    from vt_refine.utils.errors import UserError

    try:
        if args.num_episodes < 1 or args.num_envs < 1:
            raise UserError("--num_episodes and --num_envs must be at least 1")
        device = args.device if args.device not in (None, "cuda:0") or _has_cuda() else "cpu"
        cfg = make_env_cfg(args.task, num_envs=min(args.num_envs, args.num_episodes), device=device, seed=args.seed)
        from isaaclab.envs import ManagerBasedRLEnv

        with launch_simulation(cfg, args):
            env = ManagerBasedRLEnv(cfg=cfg)
            try:
                result = evaluate_policy(args.task, args.checkpoint, num_episodes=args.num_episodes,
                                         seed=args.seed, output=args.output, env=env)
                if args.plots:
                    _plot_episode(env, args.plots)
            finally:
                env.close()
    except UserError as error:
        print(f"play: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _plot_episode(env, folder) -> None:
    from pathlib import Path

    from vt_refine.app.viz import save_tactile_heatmaps

    frame = env.scene.sensors["tactile"].data.force[0].detach().cpu().numpy()
    Path(folder).mkdir(parents=True, exist_ok=True)
    save_tactile_heatmaps(frame, Path(folder) / "tactile_last_step.png", title="pads at the last evaluated step")


if __name__ == "__main__":
    sys.exit(main())
