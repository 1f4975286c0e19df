"""DPPO fine-tuning of the pre-trained diffusion policy (Ren et al. 2024, as used by VT-Refine).

Layers, each adding one idea:
    :mod:`.actor`      the diffusion policy as a PPO actor: frozen early steps, trainable last K, per-step log-probs
    :mod:`.loss`       PPO on top: GAE per decision, denoising discount, per-step clip, value loss, regulariser
    :mod:`.storage`    decisions (not env steps) and mini-batches over decisions x denoising steps
    :mod:`.algorithm`  the rsl-rl algorithm ``DPPO`` hosted by rsl-rl's stock ``OnPolicyRunner``
    :mod:`.multistep`  Te env steps -> one decision (accumulator, gym-vector-style wrapper, evaluation)
    :mod:`.config`     configclasses, incl. the runner cfg ``DPPORunnerCfg`` for ``isaaclab train``

Usage with Isaac Lab: register ``"rsl_rl_dppo_cfg_entry_point": "vt_refine.rl.dppo.config:DPPORunnerCfg"`` (or a
per-task subclass setting ``task_id``) on the task, then
``isaaclab train --task <id> --agent rsl_rl_dppo_cfg_entry_point agent.pretrained_checkpoint=<final.pt>``.
"""

from .actor import ActorOutput, DiffusionActor, StepEval, executed_log_prob, gaussian_log_prob
from .algorithm import DPPO
from .config import DiffusionActorCfg, DPPOAlgorithmCfg, DPPORunnerCfg
from .multistep import DecisionAccumulator, MultiStepVecEnv, evaluate_first_episodes, merge_logs
from .pretrained import load_pretrained_policy
from .storage import DecisionBatch, DecisionStorage

__all__ = [
    "DPPO",
    "ActorOutput",
    "DPPOAlgorithmCfg",
    "DPPORunnerCfg",
    "DecisionAccumulator",
    "DecisionBatch",
    "DecisionStorage",
    "DiffusionActor",
    "DiffusionActorCfg",
    "MultiStepVecEnv",
    "StepEval",
    "evaluate_first_episodes",
    "executed_log_prob",
    "gaussian_log_prob",
    "load_pretrained_policy",
    "merge_logs",
]
