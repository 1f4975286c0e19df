"""Visuo-tactile diffusion policy: PointNet + joint MLP encoders, 1-D conditional U-Net, DDPM/DDIM.

Pre-trained by behaviour cloning (:func:`pretrain`) and fine-tuned by DPPO, which drives
:meth:`DiffusionModel.p_mean_std` step by step. In an env it runs as the DPPO actor (:mod:`vt_refine.rl.dppo.actor`).
"""

from .checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint_file,
    load_policy,
    save_checkpoint,
)
from .config import (
    ConfigError,
    DiffusionCfg,
    DiffusionPolicyCfg,
    DiffusionProfile,
    PointEncoderCfg,
    PretrainCfg,
    StateEncoderCfg,
    UnetCfg,
)
from .encoders import JointEncoder, ObservationEncoder, PointNetEncoder
from .model import DiffusionModel
from .normalizer import MinMaxNormalizer
from .policy import DiffusionPolicy, stats_to_normalizers
from .schedule import (
    DdimSchedule,
    DdpmSchedule,
    cosine_beta_schedule,
    ddim_timesteps,
    make_ddim_schedule,
    make_ddpm_schedule,
)
from .trainer import PretrainResult, combine_datasets, merge_stats, pretrain
from .unet import ConditionalUnet1d

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ConditionalUnet1d",
    "ConfigError",
    "DdimSchedule",
    "DdpmSchedule",
    "DiffusionCfg",
    "DiffusionModel",
    "DiffusionPolicy",
    "DiffusionPolicyCfg",
    "DiffusionProfile",
    "JointEncoder",
    "MinMaxNormalizer",
    "ObservationEncoder",
    "PointEncoderCfg",
    "PointNetEncoder",
    "PretrainCfg",
    "PretrainResult",
    "StateEncoderCfg",
    "UnetCfg",
    "combine_datasets",
    "cosine_beta_schedule",
    "ddim_timesteps",
    "load_checkpoint",
    "read_checkpoint_file",
    "load_policy",
    "make_ddim_schedule",
    "make_ddpm_schedule",
    "merge_stats",
    "pretrain",
    "save_checkpoint",
    "stats_to_normalizers",
]
