"""DPPO improves a deliberately poor behaviour-cloned diffusion policy (pure-torch point reaching, CPU).

The demos come from a scripted expert that aims 0.17 away from the goal (a systematic bias) with a per-episode
aim noise; the project's own ``pretrain`` clones them. The clone only succeeds when its biased path happens to
cross the goal's 0.1 ball (~30 %). The same policy is then fine-tuned by DPPO inside rsl-rl's OnPolicyRunner
built through Isaac Lab's ``create_rsl_rl_runner``, and evaluated deterministically on 512 fresh episodes
before and after. Hyper-parameters are the DPPO defaults except those that scale with this tiny problem:
64 envs, 6 decisions per iteration, 15 iterations, actor learning rate 3e-4 (the paper's 1e-5 is for a U-Net
~1000x larger and hundreds of iterations), no learning-rate warm-up.
"""

from __future__ import annotations

import importlib.metadata
import time

import pytest
import torch

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, create_rsl_rl_runner, handle_deprecated_rsl_rl_cfg

from vt_refine.policies.diffusion import PretrainCfg
from vt_refine.rl.dppo import DPPOAlgorithmCfg, DPPORunnerCfg, evaluate_first_episodes
from toy_env import PointReachCfg, PointReachEnv, pretrain_biased_reach_policy

torch.set_num_threads(1)

TASK = "toy-reach"
ITERATIONS = 15


def evaluate(actor) -> float:
    env = PointReachEnv(PointReachCfg(num_envs=512, seed=123))
    return evaluate_first_episodes(actor, env, deterministic=True, generator=torch.Generator().manual_seed(0))[
        "success_rate"]


@pytest.mark.slow
def test_dppo_lifts_a_poor_bc_policy(tmp_path):
    start = time.time()
    bc = PretrainCfg(total_steps=400, batch_size=64, lr=3e-3, min_lr=1e-4, warmup_steps=20, ema_decay=0.99,
                     checkpoint_every=10_000, log_every=50)
    final_checkpoint = pretrain_biased_reach_policy(tmp_path / "bc", TASK, num_envs=64, num_steps=48, bc=bc)
    pretrain_time = time.time() - start

    cfg = DPPORunnerCfg(
        device="cpu", num_steps_per_env=12, max_iterations=ITERATIONS, save_interval=1000,
        experiment_name="dppo_toy", pretrained_checkpoint=str(final_checkpoint), task_id=TASK,
        critic=RslRlMLPModelCfg(hidden_dims=[64, 64], activation="mish", obs_normalization=True),
        algorithm=DPPOAlgorithmCfg(actor_learning_rate=3e-4, actor_min_learning_rate=3e-5, lr_warmup_iterations=0),
    )
    cfg = handle_deprecated_rsl_rl_cfg(cfg, importlib.metadata.version("rsl-rl-lib"))
    torch.manual_seed(0)
    runner = create_rsl_rl_runner(PointReachEnv(PointReachCfg(num_envs=64, seed=7)), cfg, log_dir=None)
    before = evaluate(runner.alg.actor)

    tuning = time.time()
    runner.learn(num_learning_iterations=ITERATIONS)
    tuning_time = time.time() - tuning
    after = evaluate(runner.alg.actor)
    print(f"\nDPPO toy: success {before:.3f} -> {after:.3f} (deterministic, 512 episodes); last rollout "
          f"{runner.alg.rollout_stats['success_rate']:.3f}; pretrain {pretrain_time:.0f}s, {ITERATIONS} DPPO "
          f"iterations {tuning_time:.0f}s, total {time.time() - start:.0f}s")
    assert before < 0.5, f"the BC policy should be poor, got success {before:.3f}"
    assert after - before >= 0.3, f"DPPO did not improve enough: {before:.3f} -> {after:.3f}"
