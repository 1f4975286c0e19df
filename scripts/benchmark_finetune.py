#!/usr/bin/env python3
"""Where a DPPO iteration's time goes: the rollout (env steps, the actor's chunk sampling, the algorithm's
bookkeeping) and the update (PPO epochs), for a pre-trained checkpoint on a task; prints JSON.

The iterations run exactly as ``isaaclab train`` / ``vt-refine finetune`` run them (rsl-rl's runner loop: act ->
env step -> process_env_step, then compute_returns and update), with the profile's fine-tuning settings.

Example:
    python scripts/benchmark_finetune.py --checkpoint runs/bc/checkpoints/final.pt --num_envs 16 --iterations 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="pre-trained checkpoint (pretrain's final.pt)")
    parser.add_argument("--task", default="VTRefine-PegInHole-Aloha")
    parser.add_argument("--profile", default="quick", help="profile whose finetune: section is used")
    parser.add_argument("--num_envs", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations (after none: the first counts)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra agent overrides, e.g. actor.train_obs_encoder=true algorithm.num_learning_epochs=3")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    import tempfile

    import torch
    import yaml

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper, create_rsl_rl_runner

    from vt_refine.app.envs import check_task, make_env
    from vt_refine.app.finetune import finetune_agent_cfg
    from vt_refine.app.profile import FinetuneSettings, Profile
    from vt_refine.utils.device import resolve_device
    from vt_refine.utils.errors import UserError

    try:
        check_task(args.task)
        device = resolve_device(args.device)
        runner = Profile.load(args.profile).finetune.runner
        for item in args.set:  # section.key=value -> {section: {key: value}}
            key, _, value = item.partition("=")
            *sections, name = key.split(".")
            node = runner
            for section in sections:
                node = node.setdefault(section, {})
            node[name] = yaml.safe_load(value)
        agent_cfg = finetune_agent_cfg(args.task, args.checkpoint, device, 0, FinetuneSettings(runner=runner))
    except UserError as error:
        print(f"benchmark_finetune: error: {error}", file=sys.stderr)
        return 2
    env = make_env(args.task, num_envs=args.num_envs, device=device, seed=0)
    try:
        vec = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
        runner = create_rsl_rl_runner(vec, agent_cfg, log_dir=tempfile.mkdtemp(prefix="bench_dppo_"))
        alg = runner.alg
        rows = []
        obs = vec.get_observations()
        for _ in range(args.iterations):
            t = {"actor_sampling": 0.0, "env_step": 0.0, "bookkeeping": 0.0}
            alg.train_mode()
            start = time.perf_counter()
            with torch.inference_mode():
                for _ in range(int(agent_cfg.num_steps_per_env)):
                    t0 = time.perf_counter()
                    decides = alg._cursor == 0
                    actions = alg.act(obs)
                    t1 = time.perf_counter()
                    obs, rewards, dones, extras = vec.step(actions)
                    t2 = time.perf_counter()
                    alg.process_env_step(obs, rewards, dones, extras)
                    t3 = time.perf_counter()
                    t["actor_sampling" if decides else "bookkeeping"] += t1 - t0
                    t["env_step"] += t2 - t1
                    t["bookkeeping"] += t3 - t2
                alg.compute_returns(obs)
            rollout = time.perf_counter() - start
            t0 = time.perf_counter()
            losses = alg.update()
            update = time.perf_counter() - t0
            total = rollout + update
            rows.append({"rollout_s": round(rollout, 2), "update_s": round(update, 2),
                         "update_share": round(update / total, 3), **{k: round(v, 2) for k, v in t.items()},
                         "gradient_steps": losses.get("gradient_steps"),
                         "actor_updated": "surrogate" in losses,
                         "env_steps_per_s": round(vec.num_envs * int(agent_cfg.num_steps_per_env) / total, 1)})
            print(f"[benchmark_finetune] {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        env.close()
    report = {"task": args.task, "checkpoint": args.checkpoint, "num_envs": args.num_envs,
              "num_steps_per_env": int(agent_cfg.num_steps_per_env), "finetune": runner, "iterations": rows}
    print(json.dumps(report, indent=2, default=str))
    if args.output:
        from vt_refine.utils.atomic import write_json_atomic

        write_json_atomic(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
