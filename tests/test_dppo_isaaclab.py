"""``isaaclab train`` runs DPPO on a real assembly task (kit-less Newton on the CPU), end to end.

The task is registered a second time with an extra agent entry point ``rsl_rl_dppo_cfg_entry_point`` (what a
task registration adds to offer DPPO), then Isaac Lab's own RSL-RL training backend runs with
``--agent rsl_rl_dppo_cfg_entry_point agent.pretrained_checkpoint=...``: env creation, ``RslRlVecEnvWrapper``,
``create_rsl_rl_runner`` (stock OnPolicyRunner), two DPPO iterations, TensorBoard and checkpoints.

The pre-trained policy is an untrained joints-only diffusion policy of the task's shapes (16 joints, 2-step
history, 16-step chunks, 8 executed): this checks the plumbing, not learning.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vt_refine.policies.diffusion import (
    DiffusionCfg,
    DiffusionPolicy,
    DiffusionPolicyCfg,
    StateEncoderCfg,
    UnetCfg,
    save_checkpoint,
)

torch.set_num_threads(1)

TASK = "VTRefine-PegInHole-Aloha"
SMOKE_TASK = "VTRefine-PegInHole-Aloha-DPPOSmokeTest"


def tiny_assembly_policy() -> DiffusionPolicy:
    cfg = DiffusionPolicyCfg(
        use_point_cloud=False, joint_dim=16, action_dim=16, obs_steps=2, horizon_steps=16, act_steps=8,
        state_encoder=StateEncoderCfg(hidden_dims=(32, 32)),
        unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=16),
        diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5),
    )
    # small actions around the middle of the joint limits (the task's [-1, 1] action space)
    stats = {"actions": {"min": -0.1 * np.ones(16), "max": 0.1 * np.ones(16)},
             "joint_pos": {"min": -np.ones(16), "max": np.ones(16)}}
    return DiffusionPolicy.from_stats(cfg, stats)


@pytest.mark.sim
def test_isaaclab_train_runs_dppo_on_the_assembly_task(tmp_path, monkeypatch):
    gym = pytest.importorskip("gymnasium")
    import vt_refine.tasks  # noqa: F401  (registers the tasks)
    from isaaclab_rl.entrypoints.backends import train_rsl_rl
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ckpt = save_checkpoint(tmp_path / "final.pt", tiny_assembly_policy(), task_id="00186")
    spec = gym.spec(TASK)
    if SMOKE_TASK not in gym.registry:
        kwargs = dict(spec.kwargs, rsl_rl_dppo_cfg_entry_point="vt_refine.rl.dppo.config:DPPORunnerCfg")
        gym.register(id=SMOKE_TASK, entry_point=spec.entry_point, disable_env_checker=True, kwargs=kwargs)
    monkeypatch.chdir(tmp_path)  # the backend logs to ./logs/rsl_rl/<experiment>/<run>
    train_rsl_rl.run([
        "--task", SMOKE_TASK, "--agent", "rsl_rl_dppo_cfg_entry_point", "--num_envs", "2", "--device", "cpu",
        "--max_iterations", "2", "agent.device=cpu", "agent.num_steps_per_env=16", "agent.save_interval=1",
        f"agent.pretrained_checkpoint={ckpt}", "agent.task_id=00186", "agent.algorithm.mini_batch_size=16",
    ])
    runs = list((tmp_path / "logs" / "rsl_rl" / "vt_refine_dppo").iterdir())
    assert len(runs) == 1
    saved = torch.load(runs[0] / "model_1.pt", weights_only=False)
    assert saved["dppo_iteration"] == 2 and saved["iter"] == 1
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    # (episode statistics appear only once an episode ended, which two short iterations do not guarantee)
    assert {"Loss/value", "Loss/explained_variance", "Loss/learning_rate", "Policy/mean_std"} <= tags
