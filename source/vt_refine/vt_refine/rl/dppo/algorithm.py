"""DPPO as an rsl-rl algorithm: hosted by rsl-rl's stock ``OnPolicyRunner`` (and so by ``isaaclab train``).

Symbols used in shapes:
    E   envs
    N   decisions per env per iteration (= num_steps_per_env / Te)
    K   fine-tuned denoising steps
    Ta  chunk length
    Te  executed steps per decision
    Da  action dim

How a chunking policy fits a per-step runner: rsl-rl's runner calls ``act(obs)`` -> ``env.step(action)`` ->
``process_env_step(...)`` once per env step. Every Te steps this algorithm takes one decision: at the first
step it samples a chunk (plus its denoising chain, log-probs and the critic's value) and stores it; the next
Te calls hand out the chunk's actions one by one while a :class:`~.multistep.DecisionAccumulator` merges the
steps' rewards and dones into the decision's. An env whose episode ends mid-decision is reset by the env;
it executes hold actions until the decision is over (never the rest of its old chunk). After N decisions the
runner calls ``compute_returns`` (GAE per decision) and ``update`` (PPO over decisions x denoising steps).

Distributed (one process per GPU, rsl-rl's ``multi_gpu`` cfg): every rank collects its own envs' rollout;
``broadcast_parameters`` starts all ranks from rank 0's fine-tuned actor and critic, ``update`` averages the
gradients over ranks before clipping and takes the target-KL decision on the ranks' mean KL, so the models
stay identical. Advantages, explained variance and the success statistics are per rank (rank 0 logs).

The losses are the pure functions of :mod:`.loss`; the per-step log-probs come from :class:`~.actor.DiffusionActor`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from rsl_rl.utils import resolve_class, resolve_obs_groups
from rsl_rl.utils.utils import reduce_gradients_in_buckets
from tensordict import TensorDict
from torch import nn

from .actor import DiffusionActor
from .loss import (
    bootstrap_time_outs as add_time_out_bootstrap,
    clipped_surrogate,
    denoising_clip_schedule,
    denoising_discount,
    explained_variance,
    generalized_advantages,
    normalize_advantages,
    pretrained_kl,
    value_loss,
)
from .multistep import DecisionAccumulator
from .pretrained import load_pretrained_policy
from .storage import DecisionStorage

__all__ = ["DPPO"]

# Keys Isaac Lab's model cfgs carry for rsl-rl < 5 (and that its migration may leave behind); no model here takes them.
_LEGACY_MODEL_KEYS = ("stochastic", "init_noise_std", "noise_std_type", "state_dependent_std")
_ACTOR_COMPAT_KEYS = ("distribution_cfg",) + _LEGACY_MODEL_KEYS
# Keys this algorithm adds to extras["log"] (rsl-rl's logger writes them to TensorBoard as they are).
_LOG_SUCCESS, _LOG_RETURN = "DPPO/success_rate", "DPPO/episode_return"


class DPPO:
    """PPO on the last K denoising steps of a diffusion policy (Ren et al. 2024, "Diffusion Policy Policy
    Optimization"), with the hyper-parameters of :class:`~vt_refine.rl.dppo.config.DPPOAlgorithmCfg`."""

    actor: DiffusionActor
    critic: nn.Module

    def __init__(
        self,
        actor: DiffusionActor,
        critic: nn.Module,
        storage: DecisionStorage,
        *,
        gamma: float,
        lam: float,
        reward_discount: float,
        bootstrap_time_outs: bool,
        gamma_denoising: float,
        clip_coef: float,
        clip_coef_base: float,
        clip_coef_rate: float,
        pretrained_reg_coef: float,
        value_loss_coef: float,
        value_clip: float | None,
        num_learning_epochs: int,
        mini_batch_size: int,
        target_kl: float | None,
        critic_warmup_iterations: int,
        actor_learning_rate: float,
        actor_min_learning_rate: float,
        critic_learning_rate: float,
        critic_min_learning_rate: float,
        lr_warmup_iterations: int,
        lr_schedule_iterations: int | None,
        actor_weight_decay: float,
        critic_weight_decay: float,
        max_grad_norm: float | None,
        grad_reduce_bucket_mb: float,
        hold_obs_key: str | None,
        hold_obs_low: list[float] | None,
        hold_obs_high: list[float] | None,
        success_return_threshold: float,
        shuffle_advantages: bool,
        max_iterations: int | None = None,
        device: str = "cpu",
        multi_gpu_cfg: dict | None = None,
        example_obs: TensorDict | None = None,
    ):
        """Arguments are the fields of :class:`~vt_refine.rl.dppo.config.DPPOAlgorithmCfg` (its defaults are the only
        ones: :meth:`construct_algorithm` passes them all); ``max_iterations``
        (the runner's) sets the cosine length when ``lr_schedule_iterations`` is None; ``example_obs`` (an env
        observation) checks ``hold_obs_key`` up front (default: the storage's first slot)."""
        _check(0.0 < gamma <= 1.0 and 0.0 <= lam <= 1.0 and 0.0 < gamma_denoising <= 1.0,
               f"gamma, gamma_denoising must be in (0, 1] and lam in [0, 1], got {gamma}, {gamma_denoising}, {lam}")
        _check(0.0 < clip_coef_base <= clip_coef, f"need 0 < clip_coef_base <= clip_coef, got {clip_coef_base}, "
                                                  f"{clip_coef}")
        _check(num_learning_epochs >= 1 and mini_batch_size >= 1,
               f"num_learning_epochs and mini_batch_size must be >= 1, got {num_learning_epochs}, {mini_batch_size}")
        _check(critic_warmup_iterations >= 0 and lr_warmup_iterations >= 0,
               "critic_warmup_iterations and lr_warmup_iterations must be >= 0")
        _check(0.0 <= actor_min_learning_rate <= actor_learning_rate and
               0.0 <= critic_min_learning_rate <= critic_learning_rate,
               "need 0 <= *_min_learning_rate <= *_learning_rate for actor and critic")
        _check(target_kl is None or target_kl > 0, f"target_kl must be > 0 or None, got {target_kl}")
        _check(grad_reduce_bucket_mb > 0, f"grad_reduce_bucket_mb must be > 0, got {grad_reduce_bucket_mb}")
        self.is_multi_gpu = multi_gpu_cfg is not None
        self.gpu_global_rank = int(multi_gpu_cfg["global_rank"]) if self.is_multi_gpu else 0
        self.gpu_world_size = int(multi_gpu_cfg["world_size"]) if self.is_multi_gpu else 1
        self.grad_reduce_bucket_mb = grad_reduce_bucket_mb
        self.device = device
        self.actor = actor.to(device)
        self.critic = critic.to(device)
        self.storage = storage
        self.gamma, self.lam = gamma, lam
        self.bootstrap_time_outs = bootstrap_time_outs
        self.gamma_denoising = gamma_denoising
        self.clip_schedule = denoising_clip_schedule(actor.ft_denoising_steps, clip_coef, clip_coef_base,
                                                     clip_coef_rate).to(device)
        self.pretrained_reg_coef = pretrained_reg_coef
        self.value_loss_coef, self.value_clip = value_loss_coef, value_clip
        self.num_learning_epochs, self.mini_batch_size = num_learning_epochs, mini_batch_size
        self.target_kl = target_kl
        self.critic_warmup_iterations = critic_warmup_iterations
        self.actor_lrs = (actor_learning_rate, actor_min_learning_rate)
        self.critic_lrs = (critic_learning_rate, critic_min_learning_rate)
        self.lr_warmup_iterations = lr_warmup_iterations
        self.lr_schedule_iterations = lr_schedule_iterations or max_iterations or 1
        self.max_grad_norm = max_grad_norm
        self.hold_obs_key = hold_obs_key
        self._hold_range = self._hold_limits(hold_obs_low, hold_obs_high, actor.cfg.action_dim, device)
        self.success_return_threshold = success_return_threshold
        self.shuffle_advantages = shuffle_advantages

        self.actor_optimizer = torch.optim.AdamW(actor.trainable_parameters(), lr=actor_learning_rate,
                                                 weight_decay=actor_weight_decay)
        self.critic_optimizer = torch.optim.AdamW(self.critic.parameters(), lr=critic_learning_rate,
                                                  weight_decay=critic_weight_decay)
        self.iteration = 0
        """Updates done (drives the critic warm-up and the learning-rate schedules; saved in checkpoints)."""
        self.learning_rate = self._cosine(self.actor_lrs, 0)
        self._explained_variance = float("nan")
        self._has_signal = True

        num_envs = storage.num_envs
        self.accumulator = DecisionAccumulator(num_envs, actor.act_steps, reward_discount, device)
        self._cursor = 0  # env steps done in the current decision
        self._chunk = torch.zeros(num_envs, actor.cfg.horizon_steps, actor.cfg.action_dim, device=device)
        self._bootstrap_values = torch.zeros(num_envs, device=device)
        self._episode_return = torch.zeros(num_envs, device=device)
        self._finished_returns: list[torch.Tensor] = []
        self.rollout_stats: dict[str, float] = {}
        """success_rate / episode_return / episodes over the episodes finished in the last rollout."""
        self._check_hold_key(example_obs if example_obs is not None else storage.observations[0])
        if self.is_multi_gpu:
            self._check_same_rollout_size()

    # ------------------------------------------------------------------ rollout (called by the runner)
    def act(self, obs: TensorDict) -> torch.Tensor:
        """The action of this env step, Tensor of shape (E, Da); takes a new decision every Te steps."""
        if self._cursor == 0:
            if self.storage.full:
                raise RuntimeError("the rollout storage is full: call compute_returns() and update() first")
            out = self.actor.act(obs)
            values = self.critic(obs).reshape(-1)
            self.storage.start_decision(obs, out.chains, out.log_probs, values, out.cond)
            self._chunk.copy_(out.actions)
            self._bootstrap_values.copy_(values)
            self.accumulator.begin()
        return self.accumulator.select_actions(self._chunk[:, self._cursor], lambda: self._hold_actions(obs))

    def process_env_step(self, obs: TensorDict, rewards: torch.Tensor, dones: torch.Tensor,
                         extras: dict[str, Any]) -> None:
        """Merge one env step into the current decision; store the decision after its Te-th step."""
        time_outs = extras.get("time_outs")
        ended = self.accumulator.add(rewards, dones, time_outs)
        if self.bootstrap_time_outs and time_outs is not None and "final_obs" in extras:
            self._bootstrap_from_final_obs(ended & time_outs.reshape(-1).to(torch.bool), extras["final_obs"])
        self._log_episodes(rewards, dones, extras)
        self._cursor += 1
        if self.accumulator.complete:
            acc = self.accumulator
            reward = acc.reward
            if self.bootstrap_time_outs:
                reward = add_time_out_bootstrap(reward, acc.time_out, self._bootstrap_values, self.gamma)
            self.storage.end_decision(reward, acc.done.float(), acc.time_out.float())
            self._cursor = 0

    def compute_returns(self, obs: TensorDict) -> None:
        """GAE over the N stored decisions, bootstrapped with V(obs) after the last one; normalised advantages."""
        st = self.storage
        if self._cursor != 0 or not st.full:
            raise RuntimeError(f"the rollout stopped mid-decision ({self._cursor} of Te={self.actor.act_steps} steps, "
                               f"{st.step} of {st.num_decisions} decisions): num_steps_per_env must be N x Te")
        last_values = self.critic(obs).reshape(-1)
        advantages, returns = generalized_advantages(st.rewards, st.values, st.dones, last_values, self.gamma,
                                                     self.lam)
        st.returns.copy_(returns)
        st.advantages.copy_(normalize_advantages(advantages))
        if self.shuffle_advantages:  # the control run: advantages unrelated to the actions, seeded per iteration
            flat = st.advantages.reshape(-1)
            order = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(self.iteration))
            st.advantages.copy_(flat[order.to(flat.device)].view_as(st.advantages))
        self._explained_variance = explained_variance(st.values, returns)
        # a rollout whose rewards are all equal (e.g. no success anywhere) says nothing about the actions: its
        # normalised advantages would be the critic's errors at unit scale, and the actor would move on noise
        self._has_signal = bool(self._mean_over_ranks((st.rewards.max() - st.rewards.min()).gt(1e-8).float()) > 0)

    # ------------------------------------------------------------------ update
    def update(self) -> dict[str, float]:
        """PPO epochs over (decision, denoising step) mini-batches; returns the mean losses and diagnostics."""
        self._set_learning_rates()
        warmed_up = self.iteration >= self.critic_warmup_iterations
        train_actor = warmed_up and self._has_signal  # the critic learns either way
        num_k = self.actor.ft_denoising_steps
        totals = {"value": 0.0, "surrogate": 0.0, "pretrained_kl": 0.0, "approx_kl": 0.0, "ratio": 0.0}
        clipped_per_step = torch.zeros(num_k, device=self.device)
        seen_per_step = torch.zeros(num_k, device=self.device)
        num_updates, stopped_epoch = 0, None
        self.actor.train()
        self.critic.train()
        for epoch, batch in self.storage.mini_batches(self.mini_batch_size, self.num_learning_epochs):
            values = self.critic(batch.observations).reshape(-1)
            v_loss = value_loss(values, batch.returns, batch.values, self.value_clip)
            loss = self.value_loss_coef * v_loss
            if train_actor:
                with_reg = self.pretrained_reg_coef > 0
                ev = self.actor.evaluate_steps(batch.observations, batch.x_prev, batch.x_next, batch.step,
                                               with_pretrained=with_reg, cond=batch.cond)
                advantages = batch.advantages * denoising_discount(batch.step, num_k, self.gamma_denoising)
                surrogate = clipped_surrogate(ev.log_prob, batch.old_log_prob, advantages,
                                              self.clip_schedule[batch.step])
                loss = loss + surrogate.loss
                if with_reg:
                    reg = pretrained_kl(ev.mean, ev.pretrained_mean, ev.std)
                    loss = loss + self.pretrained_reg_coef * reg
                    totals["pretrained_kl"] += float(reg.detach())
            self.actor_optimizer.zero_grad(set_to_none=True)
            self.critic_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.is_multi_gpu:
                self._reduce_gradients(train_actor)
            if self.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.critic.parameters(), self.max_grad_norm)
            self.critic_optimizer.step()
            if train_actor:
                if self.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.actor.trainable_parameters(), self.max_grad_norm)
                self.actor_optimizer.step()
                approx_kl = self._mean_over_ranks(surrogate.approx_kl)
                totals["surrogate"] += float(surrogate.loss.detach())
                totals["approx_kl"] += approx_kl
                totals["ratio"] += float(surrogate.ratio.mean())
                clipped_per_step += torch.bincount(batch.step[surrogate.clipped], minlength=num_k)
                seen_per_step += torch.bincount(batch.step, minlength=num_k)
            totals["value"] += float(v_loss.detach())
            num_updates += 1
            # DPPO's trust region: stop this iteration's epochs once the policy moved too far (the ranks' mean
            # KL, so that all ranks leave the loop at the same mini-batch)
            if train_actor and self.target_kl is not None and approx_kl > self.target_kl:
                stopped_epoch = epoch
                break

        # the critic's observation normaliser follows the data after the update, as in rsl-rl's PPO; across ranks
        # it reduces, not broadcasts: rsl-rl's EmpiricalNormalization all-reduces the batch moments when a process
        # group exists, so every rank's data counts (rank 0's alone would be 1 / world size of it) and all agree
        if hasattr(self.critic, "update_normalization"):
            self.critic.update_normalization(self.storage.observations.flatten(0, 1))
        self.rollout_stats = self._rollout_summary()
        self.storage.clear()
        self.iteration += 1

        out = {key: value / max(num_updates, 1) for key, value in totals.items()}
        if not train_actor:
            for key in ("surrogate", "pretrained_kl", "approx_kl", "ratio"):
                out.pop(key)
        else:
            out["clip_fraction"] = float(clipped_per_step.sum() / seen_per_step.sum().clamp(min=1))
            for k in range(num_k):
                out[f"clip_fraction/step_{k}"] = float(clipped_per_step[k] / seen_per_step[k].clamp(min=1))
        out["explained_variance"] = self._explained_variance
        out["actor_skipped_no_signal"] = float(warmed_up and not train_actor)
        out["gradient_steps"] = float(num_updates)
        out["kl_stop_epoch"] = float(-1 if stopped_epoch is None else stopped_epoch)
        out["critic_learning_rate"] = self.critic_optimizer.param_groups[0]["lr"]
        return out

    # ------------------------------------------------------------------ modes, checkpoints (runner API)
    def train_mode(self) -> None:
        self.actor.train()
        self.critic.train()

    def eval_mode(self) -> None:
        self.actor.eval()
        self.critic.eval()

    def get_policy(self) -> DiffusionActor:
        return self.actor

    def save(self) -> dict[str, Any]:
        """Fine-tuned copy, critic, optimisers and iteration; the frozen policy is only fingerprinted (it is
        rebuilt from ``pretrained_checkpoint`` and would double the file size)."""
        return {
            "actor_state_dict": self.actor.finetuned.state_dict(),
            "pretrained_fingerprint": self.actor.pretrained_fingerprint(),
            "critic_state_dict": self.critic.state_dict(),
            "actor_optimizer_state_dict": self.actor_optimizer.state_dict(),
            "critic_optimizer_state_dict": self.critic_optimizer.state_dict(),
            "dppo_iteration": self.iteration,
            # what an evaluator needs to rebuild the fine-tuned policy from this file alone
            "vt_refine_dppo": dict(getattr(self, "eval_meta", {})),
        }

    def load(self, loaded_dict: Mapping[str, Any], load_cfg: Mapping[str, bool] | None, strict: bool) -> bool:
        """Restore what ``load_cfg`` selects (all when None): actor, critic, optimizer, iteration."""
        if "actor_optimizer_state_dict" not in loaded_dict:
            raise ValueError("this checkpoint was not written by DPPO (no actor_optimizer_state_dict); to start "
                             "fine-tuning from a pre-trained policy set agent.pretrained_checkpoint instead of "
                             "--resume")
        load_cfg = dict(load_cfg) if load_cfg is not None else {"actor": True, "critic": True, "optimizer": True,
                                                                "iteration": True}
        if load_cfg.get("actor"):
            saved = loaded_dict.get("pretrained_fingerprint")
            if saved is not None and not torch.allclose(saved, self.actor.pretrained_fingerprint(), rtol=1e-9,
                                                        atol=0.0):
                raise ValueError("this DPPO checkpoint fine-tunes another pre-trained policy than the one loaded from "
                                 "agent.pretrained_checkpoint; resume with the pretrained_checkpoint of that run")
            self.actor.finetuned.load_state_dict(loaded_dict["actor_state_dict"], strict=strict)
        if load_cfg.get("critic"):
            self.critic.load_state_dict(loaded_dict["critic_state_dict"], strict=strict)
        if load_cfg.get("optimizer"):
            self.actor_optimizer.load_state_dict(loaded_dict["actor_optimizer_state_dict"])
            self.critic_optimizer.load_state_dict(loaded_dict["critic_optimizer_state_dict"])
        if load_cfg.get("iteration"):
            self.iteration = int(loaded_dict.get("dppo_iteration", 0))
            self._set_learning_rates()
        return bool(load_cfg.get("iteration", False))

    def compile(self, mode: str | None = None) -> None:
        if mode is not None:
            raise NotImplementedError("torch.compile of the DPPO models is not supported; set torch_compile_mode=None")

    def broadcast_parameters(self) -> None:
        """Start every rank from rank 0's fine-tuned actor and critic (parameters and buffers, the critic's
        observation normaliser included); check that all ranks loaded the same frozen pre-trained policy."""
        if not self.is_multi_gpu:
            return
        for module in (self.actor.finetuned, self.critic):
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)
        self._check_same_pretrained()

    @staticmethod
    def construct_algorithm(obs: TensorDict, env: Any, cfg: dict, device: str) -> DPPO:
        """Build actor (from ``cfg["pretrained_checkpoint"]``), critic, storage and algorithm from the runner cfg."""
        alg_class, alg_cfg = resolve_class(cfg["algorithm"])
        actor_class, actor_cfg = resolve_class(cfg["actor"])
        critic_class, critic_cfg = resolve_class(cfg["critic"])
        for key in _ACTOR_COMPAT_KEYS:
            actor_cfg.pop(key, None)
        for key in _LEGACY_MODEL_KEYS:
            critic_cfg.pop(key, None)
        cfg["obs_groups"] = resolve_obs_groups(obs, cfg["obs_groups"], ["actor", "critic"])
        actor_groups = cfg["obs_groups"]["actor"]
        if len(actor_groups) != 1:
            raise ValueError(f"the diffusion actor reads one observation group holding its keys; obs_groups['actor'] "
                             f"is {actor_groups}")
        policy = load_pretrained_policy(
            cfg.get("pretrained_checkpoint"), obs=obs, obs_group=actor_groups[0], num_actions=env.num_actions,
            task_id=cfg.get("task_id"), use_ema=cfg.get("pretrained_use_ema", True), device=device)
        actor = actor_class(policy, actor_groups[0], **actor_cfg).to(device)
        critic = critic_class(obs, cfg["obs_groups"], "critic", 1, **critic_cfg).to(device)
        steps, act_steps = int(cfg["num_steps_per_env"]), actor.act_steps
        if steps % act_steps != 0:
            raise ValueError(f"num_steps_per_env ({steps} env steps) must be a multiple of the executed chunk length "
                             f"Te = {act_steps}: one decision spans Te steps (e.g. 30 decisions = {30 * act_steps})")
        # with a frozen encoder the decisions' conditions stand in for the actor's observations (no PointNet in the
        # update, and no point clouds in the storage)
        cond_dim = actor.finetuned.obs_encoder.cond_dim if actor.caches_condition else 0
        stored_actor_groups = [] if cond_dim else actor_groups
        groups = list(dict.fromkeys(stored_actor_groups + list(cfg["obs_groups"]["critic"])))
        storage = DecisionStorage(env.num_envs, steps // act_steps, obs.select(*groups), actor.ft_denoising_steps,
                                  actor.cfg.horizon_steps, actor.cfg.action_dim, device, cond_dim=cond_dim)
        alg = alg_class(actor, critic, storage, device=device, max_iterations=cfg.get("max_iterations"),
                        multi_gpu_cfg=cfg.get("multi_gpu"), example_obs=obs, **alg_cfg)
        alg.eval_meta = {
            "pretrained_checkpoint": str(Path(cfg["pretrained_checkpoint"]).expanduser().resolve()),
            "pretrained_use_ema": bool(cfg.get("pretrained_use_ema", True)),
            "task_id": cfg.get("task_id"),
            "obs_group": actor_groups[0],
            "actor_cfg": {k: v for k, v in actor_cfg.items() if isinstance(v, (int, float, str, bool, list, tuple))},
        }
        return alg

    # ------------------------------------------------------------------ distributed helpers
    def _reduce_gradients(self, train_actor: bool) -> None:
        """Average the critic's (and, once it learns, the actor's) gradients over ranks, before clipping."""
        params = list(self.critic.parameters())
        if train_actor:  # decided by the iteration count, the same on every rank
            params += self.actor.trainable_parameters()
        # a parameter without a gradient here may have one on another rank: agree on the set, or the buckets differ
        has_grad = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        torch.distributed.all_reduce(has_grad, op=torch.distributed.ReduceOp.MAX)
        for param, flag in zip(params, has_grad.tolist()):
            if flag and param.grad is None:
                param.grad = torch.zeros_like(param)
        reduce_gradients_in_buckets(params, self.gpu_world_size, self.grad_reduce_bucket_mb)

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        """The mean of a scalar over ranks (the value itself on one device)."""
        value = value.detach().float().reshape(1).clone()
        if self.is_multi_gpu:
            torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
            value /= self.gpu_world_size
        return float(value)

    def _check_same_rollout_size(self) -> None:
        """Every rank must run the same number of mini-batches, or one waits for the others' all-reduce forever."""
        if not torch.distributed.is_initialized():
            raise RuntimeError("DPPO got a multi_gpu cfg but torch.distributed is not initialised: call "
                               "init_process_group first (rsl-rl's OnPolicyRunner does)")
        st = self.storage
        local = torch.tensor([st.num_envs, st.num_decisions], device=self.device)
        # one MAX all-reduce of (x, -x) gives the largest and the smallest value over ranks
        both = torch.cat([local, -local])
        torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX)
        high, low = both[:2].tolist(), (-both[2:]).tolist()
        if high != low:
            raise ValueError(f"DPPO: every rank needs the same rollout size for the same number of mini-batches; "
                             f"num_envs ranges over {low[0]}..{high[0]} and decisions per iteration over "
                             f"{low[1]}..{high[1]} across ranks (this rank: {local.tolist()})")

    def _check_same_pretrained(self) -> None:
        """Raise on every rank (not just the odd one, which would leave the others waiting) if a rank's frozen
        pre-trained policy differs from rank 0's."""
        mine = self.actor.pretrained_fingerprint().to(self.device)
        reference = mine.clone()
        torch.distributed.broadcast(reference, src=0)
        differs = torch.tensor([float(not torch.allclose(mine, reference, rtol=1e-9, atol=0.0))], device=self.device)
        torch.distributed.all_reduce(differs, op=torch.distributed.ReduceOp.MAX)
        if bool(differs.item()):
            raise ValueError("DPPO: the ranks loaded different pre-trained policies (fingerprints differ); give "
                             "every rank the same agent.pretrained_checkpoint")

    # ------------------------------------------------------------------ helpers
    def _cosine(self, lrs: tuple[float, float], it: int) -> float:
        """Linear warm-up over lr_warmup_iterations, then cosine from peak to min over the schedule length."""
        peak, low = lrs
        warm = self.lr_warmup_iterations
        if it < warm:
            return peak * (it + 1) / warm
        span = max(1, self.lr_schedule_iterations - warm)
        progress = min(1.0, (it - warm) / span)
        return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _set_learning_rates(self) -> None:
        # the actor's schedule starts when it starts moving (after the critic warm-up)
        self.learning_rate = self._cosine(self.actor_lrs, max(0, self.iteration - self.critic_warmup_iterations))
        for group in self.actor_optimizer.param_groups:
            group["lr"] = self.learning_rate
        for group in self.critic_optimizer.param_groups:
            group["lr"] = self._cosine(self.critic_lrs, self.iteration)

    def _hold_actions(self, obs: TensorDict) -> torch.Tensor:
        """Actions of envs whose episode ended earlier in this decision, Tensor of shape (E, Da)."""
        if self.hold_obs_key is None:
            return torch.zeros_like(self._chunk[:, 0])
        held = self.actor.raw_policy_obs(obs)[self.hold_obs_key][:, -1]
        if self._hold_range is None:
            return held
        low, high = self._hold_range
        return (2.0 * (held - low) / (high - low) - 1.0).clamp(-1.0, 1.0)

    @staticmethod
    def _hold_limits(low: list[float] | None, high: list[float] | None, action_dim: int,
                     device: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        if low is None and high is None:
            return None
        if low is None or high is None or len(low) != action_dim or len(high) != action_dim:
            raise ValueError(f"algorithm.hold_obs_low and hold_obs_high must both be given with Da = {action_dim} "
                             f"entries each, got {low} and {high}")
        lo, hi = torch.tensor(low, dtype=torch.float32, device=device), torch.tensor(high, dtype=torch.float32,
                                                                                  device=device)
        if not bool((hi > lo).all()):
            raise ValueError(f"algorithm.hold_obs_high must exceed hold_obs_low in every dim, got {low} and {high}")
        return lo, hi

    def _check_hold_key(self, obs: TensorDict) -> None:
        if self.hold_obs_key is None:
            return
        raw = self.actor.raw_policy_obs(obs)
        if self.hold_obs_key not in raw:
            raise ValueError(f"algorithm.hold_obs_key '{self.hold_obs_key}' is not a policy observation "
                             f"({list(raw)}); set it to one of them or to None (hold with zeros)")
        value = raw[self.hold_obs_key]
        if value.ndim != 3 or value.shape[-1] != self.actor.cfg.action_dim:
            raise ValueError(f"algorithm.hold_obs_key '{self.hold_obs_key}' has per-env shape "
                             f"{tuple(value.shape[1:])}; holding needs (To, Da = {self.actor.cfg.action_dim})")

    def _bootstrap_from_final_obs(self, cut: torch.Tensor, final_obs: Mapping[str, Any]) -> None:
        """Use V(terminal observation) for envs whose episode was cut by a time limit at this step."""
        if not bool(cut.any()):
            return
        final = final_obs if isinstance(final_obs, TensorDict) else TensorDict(dict(final_obs),
                                                                               batch_size=[cut.shape[0]])
        self._bootstrap_values[cut] = self.critic(final.to(self.device)).reshape(-1)[cut]

    def _log_episodes(self, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, Any]) -> None:
        """Episode returns and successes into ``extras["log"]`` (rsl-rl's logger averages them per iteration)."""
        self._episode_return += rewards.reshape(-1).to(self._episode_return.dtype)
        finished = dones.reshape(-1).to(torch.bool)
        log = extras.get("log")
        # a fresh dict without our keys: the env may hand back the same log dict at later steps
        log = {key: value for key, value in (log or {}).items() if key not in (_LOG_SUCCESS, _LOG_RETURN)}
        if bool(finished.any()):
            returns = self._episode_return[finished].clone()
            self._episode_return[finished] = 0.0
            self._finished_returns.append(returns)
            log[_LOG_SUCCESS] = (returns >= self.success_return_threshold).float()
            log[_LOG_RETURN] = returns
        if log or "log" in extras:
            extras["log"] = log

    def _rollout_summary(self) -> dict[str, float]:
        if not self._finished_returns:
            return {"episodes": 0.0, "success_rate": float("nan"), "episode_return": float("nan")}
        returns = torch.cat(self._finished_returns)
        self._finished_returns.clear()
        return {"episodes": float(returns.numel()),
                "success_rate": float((returns >= self.success_return_threshold).float().mean()),
                "episode_return": float(returns.mean())}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"DPPO: {message}")
