"""Min-max normaliser and the policy/pretrain configs (dict and YAML round trips, errors)."""

from __future__ import annotations

import pytest
import torch
import yaml

from vt_refine.utils.errors import UserError

from vt_refine.app.profile import Profile
from vt_refine.policies.diffusion import (
    ConfigError,
    DiffusionPolicyCfg,
    DiffusionProfile,
    MinMaxNormalizer,
    PretrainCfg,
    UnetCfg,
)

torch.set_num_threads(1)


def test_normalizer_round_trip_and_range():
    torch.manual_seed(0)
    data = torch.randn(500, 7) * torch.tensor([0.1, 1, 2, 5, 0.01, 3, 1]) + torch.arange(7.0)
    norm = MinMaxNormalizer.fit(data)
    y = norm.normalize(data)
    assert y.amin(0).tolist() == pytest.approx([-1.0] * 7, abs=1e-5)
    assert y.amax(0).tolist() == pytest.approx([1.0] * 7, abs=1e-5)
    torch.testing.assert_close(norm.unnormalize(y), data, rtol=1e-5, atol=1e-5)


def test_normalizer_constant_dims_give_no_nan():
    data = torch.stack([torch.linspace(-1, 1, 11), torch.full((11,), 0.042), torch.zeros(11)], dim=-1)
    norm = MinMaxNormalizer.fit(data)
    y = norm.normalize(data)
    assert bool(torch.isfinite(y).all())
    assert bool((y[:, 1:] == 0).all())  # constant values sit at the centre
    back = norm.unnormalize(torch.tensor([[0.3, 0.0, 0.0], [0.3, 1.0, -1.0]]))
    assert back[0, 1].item() == pytest.approx(0.042, abs=1e-7)
    assert abs(back[1, 1].item() - 0.042) <= 1e-4 + 1e-7  # a full-range output moves at most eps


def test_normalizer_state_dict_round_trip():
    norm = MinMaxNormalizer.from_stats([0.0, -2.0, 5.0], [1.0, 2.0, 5.0])
    clone = MinMaxNormalizer.from_state_dict(norm.state_dict())
    x = torch.tensor([[0.5, 1.0, 5.0]])
    torch.testing.assert_close(clone.normalize(x), norm.normalize(x))
    fresh = MinMaxNormalizer(3)
    fresh.load_state_dict(norm.state_dict())
    torch.testing.assert_close(fresh.unnormalize(torch.zeros(1, 3)), torch.tensor([[0.5, 0.0, 5.0]]))


def test_normalizer_rejects_bad_stats():
    with pytest.raises(ValueError, match=r"action stats min exceeds max in dimension\(s\) \[1\]"):
        MinMaxNormalizer.from_stats([0.0, 3.0], [1.0, 2.0], name="action stats")
    with pytest.raises(ValueError, match="NaN"):
        MinMaxNormalizer.from_stats([0.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="last dimension of 2"):
        MinMaxNormalizer.from_stats([0.0, 0.0], [1.0, 1.0]).normalize(torch.zeros(4, 3))


def test_config_dict_round_trip_and_errors():
    cfg = DiffusionPolicyCfg(num_points=100, unet=UnetCfg(down_dims=(16, 32)))
    data = cfg.to_dict()
    assert data["unet"]["down_dims"] == [16, 32]
    assert DiffusionPolicyCfg.from_dict(data) == cfg
    assert DiffusionPolicyCfg.from_dict(yaml.safe_load(yaml.safe_dump(data))) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['kernel'\] in config section 'policy.unet'"):
        DiffusionPolicyCfg.from_dict({"unet": {"kernel": 3}}, section="policy")
    with pytest.raises(ConfigError, match="'policy.horizon_steps' must be an integer"):
        DiffusionPolicyCfg.from_dict({"horizon_steps": "16"}, section="policy")
    with pytest.raises(ConfigError, match="horizon_steps .* must be divisible by"):
        DiffusionPolicyCfg(horizon_steps=6, act_steps=4, unet=UnetCfg(down_dims=(8, 16, 32)))
    with pytest.raises(ConfigError, match="multiple of unet.n_groups"):
        UnetCfg(down_dims=(12,))
    # PyYAML reads 1e-4 (no dot) as a string; it is accepted as a number
    assert PretrainCfg.from_dict({"lr": "1e-4"}).lr == pytest.approx(1e-4)


def test_profiles_hold_paper_and_quick_values(tmp_path):
    paper = Profile.load("paper").diffusion
    assert paper.policy.unet.down_dims == (512, 1024, 2048)
    assert paper.policy.point_encoder.hidden_dims == (64, 128, 256, 512)
    assert paper.policy.state_encoder.hidden_dims == (64, 64)
    assert (paper.policy.obs_steps, paper.policy.horizon_steps, paper.policy.act_steps) == (2, 16, 8)
    d = paper.policy.diffusion
    assert (d.denoising_steps, d.prediction_type, d.beta_schedule, d.ddim_steps) == (100, "epsilon", "cosine", 5)
    assert (paper.pretrain.lr, paper.pretrain.weight_decay, paper.pretrain.ema_decay) == (1e-4, 1e-6, 0.995)
    quick = Profile.load("quick").diffusion
    assert max(quick.policy.unet.down_dims) <= 256
    assert quick.policy.obs_shapes["joint_pos"] == (2, 16)
    # a section the file leaves out keeps its defaults (and is recorded as absent)
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump({"collect": {"num_envs": 8}, "policy": {"num_points": 10}}))
    mixed = Profile.load(path)
    assert mixed.diffusion.policy.num_points == 10 and mixed.diffusion.pretrain == PretrainCfg()
    assert mixed.sections == ("policy", "collect")
    assert isinstance(mixed.diffusion, DiffusionProfile)
    with pytest.raises(UserError, match="nope.yaml"):
        Profile.load(tmp_path / "nope.yaml")
