#!/usr/bin/env python3
"""Where a peg-in-hole policy puts the parts: socket and plug positions over one batch of evaluation episodes.

The expert sets the socket down at one spot (``ScriptedExpertCfg.socket_place_xy``) and brings the plug over it,
so in the demos both sit within ~1 mm of that spot once the socket is placed. This prints, per episode, how far
the policy's socket is from the spot and how far the plug is from the socket at ``--at_step`` (the demos' set-down
is done by step 100), which tells a plug that misses a well-placed socket from a socket placed elsewhere. With
``--demos`` it prints the same figures for the recorded demos. Batch b of ``vt-refine evaluate --seed S`` starts
from the same states as ``--seed S+b`` here.

Example:
    python scripts/trace_parts.py bc/checkpoints/final.pt --num_envs 10 --seed 0 --demos peg.hdf5
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="pre-trained or fine-tuned checkpoint of VTRefine-PegInHole-Aloha")
    parser.add_argument("--num_envs", type=int, default=10, help="episodes traced (one batch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at_step", type=int, default=100, help="control step at which the placement is read")
    parser.add_argument("--demos", default=None, help="demo HDF5 file: print the same figures for its demos")
    parser.add_argument("--output", default=None, help=".npz file for the per-step positions [m]")
    return parser.parse_args(argv)


def trace(checkpoint, num_envs: int, seed: int):
    """Per-step plug and socket positions (env frame, m) and done flags: arrays (T, E, 3), (T, E, 3), (T, E)."""
    import torch
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper
    from vt_refine.app.envs import make_env

    task = "VTRefine-PegInHole-Aloha"
    checkpoint.check_task(task)
    env = make_env(task, num_envs=num_envs, device="cpu", seed=seed)
    try:
        vec = RslRlVecEnvWrapper(env)
        env.reset(seed=seed)
        actor = checkpoint.eval_actor(vec.get_observations(), vec.num_actions, "cpu")
        generator = torch.Generator().manual_seed(seed)
        obs = vec.get_observations()
        plug, socket, dones = [], [], []
        origins = env.scene.env_origins
        with torch.no_grad():
            for _ in range(int(env.max_episode_length) // actor.act_steps):
                chunk = actor.act(obs, deterministic=True, generator=generator).actions
                for i in range(actor.act_steps):
                    obs, _, done, _ = vec.step(chunk[:, i])
                    plug.append(env.scene["plug"].data.root_pos_w.torch - origins)
                    socket.append(env.scene["socket"].data.root_pos_w.torch - origins)
                    dones.append(done.bool())
        return torch.stack(plug).numpy(), torch.stack(socket).numpy(), torch.stack(dones).numpy()
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.num_envs < 1 or args.at_step < 0:
        print("trace_parts: error: --num_envs must be >= 1 and --at_step >= 0", file=sys.stderr)
        return 2
    import numpy as np
    from vt_refine.app.checkpoint import Checkpoint
    from vt_refine.expert.scripted_expert import ScriptedExpertCfg
    from vt_refine.utils.errors import UserError

    spot = np.array(ScriptedExpertCfg().socket_place_xy)
    try:
        checkpoint = Checkpoint.open(args.checkpoint)
        plug, socket, dones = trace(checkpoint, args.num_envs, args.seed)
    except UserError as error:
        print(f"trace_parts: error: {error}", file=sys.stderr)
        return 2
    if args.output:
        np.savez(args.output, plug=plug, socket=socket, done=dones)
    t = min(args.at_step, len(plug) - 1)
    print(f"policy, step {t}: socket off the expert's spot | plug - socket in xy [mm] (episode ended before: -)")
    for e in range(plug.shape[1]):
        ended = dones[:t, e].any()
        off = np.linalg.norm(socket[t, e, :2] - spot) * 1e3
        gap = np.linalg.norm(plug[t, e, :2] - socket[t, e, :2]) * 1e3
        print(f"  episode {e}: " + ("-" if ended else f"{off:5.1f} | {gap:5.1f}"))
    if args.demos:
        from vt_refine.data.hdf5_dataset import DemoReader

        with DemoReader(args.demos) as reader:
            offs, gaps = [], []
            for episode in range(len(reader)):
                critic = reader.read(episode, "states/critic")  # 16 joints, then the plug's and the socket's pose
                k, socket_at = min(t, len(critic) - 1), 16 + (critic.shape[1] - 16) // 2
                offs.append(np.linalg.norm(critic[k, socket_at:socket_at + 2] - spot) * 1e3)
                gaps.append(np.linalg.norm(critic[k, 16:18] - critic[k, socket_at:socket_at + 2]) * 1e3)
        print(f"demos, step {t}: socket off the spot mean {np.mean(offs):.1f} max {np.max(offs):.1f} mm; "
              f"plug - socket mean {np.mean(gaps):.1f} max {np.max(gaps):.1f} mm ({len(offs)} demos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
