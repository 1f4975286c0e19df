"""Configuration of DPPO fine-tuning: actor, algorithm and the rsl-rl runner cfg ``isaaclab train`` reads.

Symbols used below:
    E   parallel envs
    N   decisions per env per iteration (num_steps_per_env / Te)
    K   fine-tuned denoising steps (5)
    Ta  predicted chunk length (16)
    Te  executed steps of a chunk (8)
    Da  action dim (16)

Defaults come from /work/shared/design/vt-refine-facts.md, section "Fine-tuning (DPPO)"; "(inferred)"
marks our reading of DPPO's public configs where the paper is silent.

These are Isaac Lab ``configclass``es so that ``isaaclab train`` can override any field from the command
line (``agent.algorithm.actor_learning_rate=3e-5``); rsl-rl receives them as a plain dict and resolves
``class_name`` of the algorithm and of the two models, passing the other fields as keyword arguments.
"""

from __future__ import annotations

from typing import Literal


from isaaclab.utils import configclass

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg

from vt_refine.utils.device import default_device

from .multistep import SUCCESS_RETURN_THRESHOLD

__all__ = ["DiffusionActorCfg", "DPPOAlgorithmCfg", "DPPORunnerCfg"]




@configclass
class DiffusionActorCfg:
    """The pre-trained diffusion policy as a PPO actor (a frozen copy + a fine-tuned copy of its last K steps)."""

    class_name: str = "vt_refine.rl.dppo.actor:DiffusionActor"
    """Actor class, resolved by rsl-rl."""

    sampler: Literal["ddpm", "ddim"] = "ddpm"
    """Denoising chain run by the actor: "ddpm" (all K_total steps) or "ddim" (the policy's Kd steps)."""

    ft_denoising_steps: int = 5
    """K, the last denoising steps run by the trainable copy (paper: 5); the earlier ones stay frozen."""

    act_steps: int | None = None
    """Te, chunk steps executed per decision; None = the pre-trained policy's ``act_steps`` (paper: 8)."""

    min_sampling_std: float = 0.01
    """Floor of the per-step sampling std during rollouts, normalised action units (paper: 0.01)."""

    min_logprob_std: float = 0.1
    """Floor of the per-step std in log-probabilities, normalised action units (paper: 0.10); keeps ratios tame."""

    randn_clip_value: float = 3.0
    """Clip of the standard-normal sampling noise, in std (paper: 3.0)."""

    logprob_clip: tuple[float, float] | None = (-5.0, 2.0)
    """Clamp of each element's log-density, nats (DPPO's public code); None disables it."""

    ddim_eta: float | None = None
    """DDIM stochasticity used while fine-tuning (DPPO trains DDIM with eta = 1); None keeps the policy's value."""

    train_obs_encoder: bool = True
    """Fine-tune the observation encoder of the trainable copy too (DPPO does); False freezes it."""

    # Isaac Lab's cfg migration (``handle_deprecated_rsl_rl_cfg``) reads these two fields on every model cfg
    # named ``actor``; they mean nothing here and are dropped before the actor is built.
    distribution_cfg: None = None
    """Unused (present for Isaac Lab's rsl-rl cfg migration)."""
    stochastic: bool = False
    """Unused (present for Isaac Lab's rsl-rl cfg migration)."""


@configclass
class DPPOAlgorithmCfg:
    """PPO over the denoising steps of the diffusion policy (DPPO, Ren et al. 2024)."""

    class_name: str = "vt_refine.rl.dppo.algorithm:DPPO"
    """Algorithm class, resolved by rsl-rl's :class:`~rsl_rl.runners.OnPolicyRunner`."""

    # -- returns
    gamma: float = 0.999
    """Discount per decision (one decision = Te env steps) (paper: 0.999)."""
    lam: float = 0.95
    """GAE lambda, per decision (paper: 0.95)."""
    reward_discount: float = 1.0
    """Discount per env step inside a decision when summing its Te rewards (1 = plain sum, DPPO's choice)."""
    bootstrap_time_outs: bool = True
    """Add gamma * V to the reward of a decision that ended on a time-out (uses ``extras["final_obs"]`` when
    the env provides it, else the value of the decision's own observation, as rsl-rl's PPO does)."""

    # -- policy loss
    gamma_denoising: float = 0.99
    """Discount along the denoising chain: step k (0 = noisiest fine-tuned step) gets gamma_denoising^(K-k-1)
    (DPPO public default)."""
    clip_coef: float = 0.01
    """PPO ratio clip at the final denoising step (inferred: DPPO public configs)."""
    clip_coef_base: float = 1e-3
    """PPO ratio clip at the noisiest fine-tuned step (paper: 1e-3)."""
    clip_coef_rate: float = 3.0
    """Exponential rate of the clip's growth from base to full over the K steps (DPPO public default)."""
    pretrained_reg_coef: float = 2e-4
    """Weight of the regulariser towards the pre-trained policy (paper: 2e-4). The regulariser is the KL between
    the fine-tuned and frozen per-step Gaussians at the stored latents (see :func:`~.loss.pretrained_kl`)."""

    # -- value loss
    value_loss_coef: float = 0.5
    """Weight of the value loss 0.5 * (V - R)^2 (DPPO public default)."""
    value_clip: float | None = None
    """Clip of the value change around the rollout's value, in return units; None = unclipped (DPPO default)."""

    # -- optimisation
    num_learning_epochs: int = 10
    """Passes over the rollout per iteration (paper: 10)."""
    mini_batch_size: int = 512
    """(decision, denoising step) pairs per gradient step (inferred); bounds memory with point clouds."""
    target_kl: float | None = 1.0
    """Stop the iteration's epochs once a mini-batch's approximate KL exceeds this, nats (paper: 1.0)."""
    critic_warmup_iterations: int = 2
    """First iterations in which only the critic learns (inferred: DPPO public configs)."""
    actor_learning_rate: float = 1e-5
    """Peak AdamW learning rate of the fine-tuned denoiser (paper: 1e-5)."""
    actor_min_learning_rate: float = 1e-6
    """Actor learning rate at the end of the cosine decay (inferred)."""
    critic_learning_rate: float = 1e-3
    """Peak AdamW learning rate of the critic (paper: 1e-3)."""
    critic_min_learning_rate: float = 1e-4
    """Critic learning rate at the end of the cosine decay (inferred)."""
    lr_warmup_iterations: int = 10
    """Linear warm-up of both learning rates, in iterations (inferred: DPPO public configs)."""
    lr_schedule_iterations: int | None = None
    """Length of the cosine decay in iterations; None = the runner's ``max_iterations``."""
    actor_weight_decay: float = 0.0
    """AdamW weight decay of the actor (DPPO public default)."""
    critic_weight_decay: float = 0.0
    """AdamW weight decay of the critic (DPPO public default)."""
    max_grad_norm: float | None = 1.0
    """Clip of each network's global gradient L2 norm; None disables it."""
    grad_reduce_bucket_mb: float = 25.0
    """Multi-GPU only: gradients are averaged over ranks in all-reduce buffers of at most this size, MB (rsl-rl's
    PPO default); bounds the extra memory of packing them."""

    # -- decisions in a per-step runner
    hold_obs_key: str | None = "joint_pos"
    """An env whose episode ended mid-decision is auto-reset by the env; for the rest of that decision it
    executes the last frame of this policy observation (holds the reset pose when actions are absolute
    joint-position targets) instead of the old chunk. None executes zeros."""
    hold_obs_low: list[float] | None = None
    """With ``hold_obs_high``: per-action-dim range mapped to [-1, 1] before holding, for envs whose actions
    are normalised to joint limits (the assembly tasks' ``JointPositionToLimitsAction``: give the 16 joint
    limits, rad / m). None holds the observation as it is."""
    hold_obs_high: list[float] | None = None
    """Upper ends of the range of ``hold_obs_low``."""
    success_return_threshold: float = SUCCESS_RETURN_THRESHOLD
    """An episode counts as a success when its return reaches this (sparse reward: 1 on success)."""
    shuffle_advantages: bool = False
    """Control experiment, off in every profile: each rollout's normalised advantages are permuted over its
    decisions (same values, no relation to the actions taken) before the update, so a run measures what updates
    of the same size and statistics do to the policy without a learning signal."""


@configclass
class DPPORunnerCfg(RslRlOnPolicyRunnerCfg):
    """rsl-rl runner cfg for DPPO; the stock :class:`~rsl_rl.runners.OnPolicyRunner` hosts it.

    The runner steps the env once per action; the DPPO algorithm turns every Te consecutive steps into one
    decision (see :mod:`vt_refine.rl.dppo.algorithm`), so ``num_steps_per_env`` counts env steps and must be a
    multiple of Te.
    """

    class_name: str = "OnPolicyRunner"
    device: str = default_device()  # the machine's: rsl-rl would default to cuda:0 and die without a GPU
    seed: int = 42
    num_steps_per_env: int = 240
    """Env steps per env per iteration: 30 decisions x Te = 8 (paper: 30 decisions per update)."""
    max_iterations: int = 300
    """Fine-tuning iterations (inferred; not public)."""
    save_interval: int = 10
    experiment_name: str = "vt_refine_dppo"
    init_at_random_ep_len: bool = False
    """Keep episodes aligned with decisions at the start (random lengths would end episodes mid-decision)."""
    obs_groups: dict[str, list[str]] = {"actor": ["policy"], "critic": ["critic"]}
    """Actor: one group holding the diffusion policy's observation keys; critic: the flat asymmetric state."""
    clip_actions: float | None = None
    check_for_nan: bool = True

    actor: DiffusionActorCfg = DiffusionActorCfg()
    critic: RslRlMLPModelCfg = RslRlMLPModelCfg(hidden_dims=[256, 256, 256], activation="mish", obs_normalization=True)
    """Randomly initialised MLP on the critic group (DPPO: 3 x 256, Mish)."""
    algorithm: DPPOAlgorithmCfg = DPPOAlgorithmCfg()

    pretrained_checkpoint: str = ""
    """Checkpoint of the pre-trained diffusion policy (``.../checkpoints/final.pt`` of ``pretrain``). Required."""
    pretrained_use_ema: bool = True
    """Start from the checkpoint's EMA weights when it has them."""
    task_id: str | None = None
    """Task the checkpoint must have been pre-trained for (its ``task_id``, e.g. "00186"); None skips the check."""
