"""Run the scripted grasp on a task and draw the four pads: a PNG at the strongest touch and a GIF over the episode.

    python scripts/show_tactile.py --task VTRefine-PegInHole-Aloha --output outputs/tactile
"""

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=160, help="control steps to run (the expert inserts by ~150)")
    parser.add_argument("--output", default="outputs/tactile")
    args = parser.parse_args(argv)

    import numpy as np

    from vt_refine.app.envs import make_env
    from vt_refine.expert import start_expert
    from vt_refine.utils.errors import UserError
    from vt_refine.app.viz import save_tactile_gif, save_tactile_heatmaps

    def keep_going(cfg):
        cfg.task.terminate_on_success = False

    try:
        env = make_env(args.task, num_envs=1, device=args.device, seed=args.seed, cfg_hook=keep_going)
    except UserError as error:
        print(f"show_tactile: error: {error}", file=sys.stderr)
        return 2
    try:
        _, expert = start_expert(env, seed=args.seed)
        frames = []
        for _ in range(args.steps):
            env.step(expert.act())
            frames.append(env.scene.sensors["tactile"].data.force[0].detach().cpu().numpy().copy())
    finally:
        env.close()
    frames = np.stack(frames)  # (T, 4, 12, 32) [N]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    peak = int(frames.reshape(len(frames), -1).sum(axis=1).argmax())
    save_tactile_heatmaps(frames[peak], out / "tactile_peak.png", title=f"{args.task}: taxel force [N], step {peak}")
    save_tactile_gif(frames, out / "tactile_episode.gif")
    print(f"wrote {out / 'tactile_peak.png'} and {out / 'tactile_episode.gif'} (peak total force "
          f"{frames[peak].sum():.3f} N at step {peak})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
