"""Brief pre-training on 1-D toy action distributions; samples must reproduce them.

Set-up: Da = 1, Ta = 4, joints-only policy whose actions do not depend on the observation.
Tolerances: 256 sampled chunks; even if the 4 actions of a chunk were fully correlated the Monte-Carlo
standard error of the mean is 0.1 / sqrt(256) = 0.006, so 0.03 (= 0.3 sigma) leaves ~0.02 for the
model's own bias after a few hundred steps. DDIM-5 (eta = 0) is known to shrink the spread, hence its
looser std band.
"""

from __future__ import annotations

import pytest
import torch

from vt_refine.policies.diffusion import (
    DiffusionPolicyCfg,
    DiffusionProfile,
    PretrainCfg,
    StateEncoderCfg,
    UnetCfg,
    load_policy,
    pretrain,
)
from policy_fixtures import SyntheticChunkDataset

torch.set_num_threads(1)

NUM_CHUNKS = 256


def train_toy(kind: str, out_dir) -> object:
    cfg = DiffusionPolicyCfg(
        use_point_cloud=False, joint_dim=2, action_dim=1, horizon_steps=4, act_steps=2,
        state_encoder=StateEncoderCfg(hidden_dims=(16, 16)),
        unet=UnetCfg(down_dims=(32, 64), diffusion_step_embed_dim=16),
    )
    data = SyntheticChunkDataset.from_cfg(cfg, 2048, kind=kind, mean=0.3, std=0.1, seed=1)
    train = PretrainCfg(total_steps=350, batch_size=64, lr=3e-3, min_lr=1e-4, warmup_steps=20,
                        ema_decay=0.99, checkpoint_every=1000, log_every=50)
    result = pretrain(DiffusionProfile(policy=cfg, pretrain=train), data, out_dir, progress=False)
    return load_policy(result.final_checkpoint, use_ema=True)


def sample(policy, sampler: str) -> torch.Tensor:
    obs = {"joint_pos": torch.zeros(NUM_CHUNKS, 2, 2)}
    return policy.predict_chunk(obs, sampler=sampler, generator=torch.Generator().manual_seed(0)).flatten()


def test_gaussian_toy_mean_and_spread(tmp_path):
    torch.manual_seed(0)
    policy = train_toy("gaussian", tmp_path)
    ddpm = sample(policy, "ddpm")
    assert ddpm.mean().item() == pytest.approx(0.3, abs=0.03)
    assert 0.06 < ddpm.std().item() < 0.14
    ddim = sample(policy, "ddim")
    assert ddim.mean().item() == pytest.approx(0.3, abs=0.03)
    assert 0.04 < ddim.std().item() < 0.14


def test_bimodal_toy_keeps_both_modes(tmp_path):
    """Chunks at +0.3 or -0.3 (p = 1/2): a mean regressor would answer 0; diffusion must not."""
    torch.manual_seed(0)
    policy = train_toy("bimodal", tmp_path)
    actions = sample(policy, "ddpm").view(NUM_CHUNKS, 4)
    positive = (actions.mean(dim=1) > 0).float().mean().item()
    assert 0.35 < positive < 0.65  # mode weights; per-chunk SE is 0.5 / 16 = 0.03
    assert actions.abs().mean().item() == pytest.approx(0.3, abs=0.05)
    assert (actions.abs() < 0.1).float().mean().item() < 0.1  # data: 2.3 % within 0.1 of zero
