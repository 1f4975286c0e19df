"""DPPO under a distributed launch (one process per GPU in production), here 2 CPU processes on gloo.

Each rank builds the algorithm through ``DPPO.construct_algorithm`` with the ``multi_gpu`` cfg rsl-rl's
OnPolicyRunner would give it (the runner itself insists on NCCL and cuda:<local rank>), on the toy reaching
task with a different env seed and torch seed per rank, so rollouts and local gradients differ. A briefly
behaviour-cloned (deliberately poor) diffusion policy is the pre-trained checkpoint. The workers save what
they saw; the assertions run here.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from isaaclab.utils import to_dict
from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, handle_deprecated_rsl_rl_cfg

from vt_refine.policies.diffusion import PretrainCfg
from vt_refine.rl.dppo import DiffusionActorCfg, DPPOAlgorithmCfg, DPPORunnerCfg
from vt_refine.rl.dppo import algorithm as dppo_algorithm
from toy_env import PointReachCfg, PointReachEnv, pretrain_biased_reach_policy

torch.set_num_threads(1)

TASK = "toy-reach"
WORLD_SIZE = 2
NUM_ENVS, NUM_STEPS = 10, 4  # per rank: 2 decisions (Te = 2) x 2 denoising steps x 10 envs = 40 pairs
SYNC_ITERATIONS = 3  # the first is a critic warm-up
JOIN_TIMEOUT_S = 120.0  # a deadlocked collective must fail the test, not hang it
COLLECTIVE_TIMEOUT_S = 60  # gloo raises in the workers when a collective waits longer


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A diffusion policy cloned for a few steps from biased demos (poor on purpose)."""
    bc = PretrainCfg(total_steps=30, batch_size=32, lr=3e-3, min_lr=1e-4, warmup_steps=5, ema_decay=0.9,
                     checkpoint_every=10_000, log_every=1000)
    return str(pretrain_biased_reach_policy(tmp_path_factory.mktemp("bc"), TASK, num_envs=16, num_steps=12, bc=bc))


# ---------------------------------------------------------------------------------------------- workers
def _build(rank: int, ckpt: str, num_envs: int = NUM_ENVS, **alg_cfg):
    """Env and DPPO of one rank, built as ``OnPolicyRunner`` builds them under a distributed launch."""
    defaults = dict(mini_batch_size=20, num_learning_epochs=2, critic_warmup_iterations=1, lr_warmup_iterations=0,
                    actor_learning_rate=1e-3)
    defaults.update(alg_cfg)
    cfg = DPPORunnerCfg(
        device="cpu", num_steps_per_env=NUM_STEPS, max_iterations=10, experiment_name="dppo_dist",
        pretrained_checkpoint=ckpt, task_id=TASK, actor=DiffusionActorCfg(ft_denoising_steps=2),
        critic=RslRlMLPModelCfg(hidden_dims=[32, 32], activation="elu", obs_normalization=True),
        algorithm=DPPOAlgorithmCfg(**defaults),
    )
    cfg = to_dict(handle_deprecated_rsl_rl_cfg(cfg, importlib.metadata.version("rsl-rl-lib")))
    cfg["multi_gpu"] = {"global_rank": rank, "local_rank": rank, "world_size": WORLD_SIZE}
    # each rank its own episodes; a wide success radius gives the short rollouts successes and failures, so that
    # the actor has a reward signal to update on (with the default 0.1 both ranks' second rollout had none)
    env = PointReachEnv(PointReachCfg(num_envs=num_envs, seed=11 + 100 * rank, success_radius=0.4))
    torch.manual_seed(rank)  # and its own critic init (until the broadcast) and sampling noise
    return env, dppo_algorithm.DPPO.construct_algorithm(env.get_observations(), env, cfg, "cpu")


def _iterate(env, alg) -> dict[str, float]:
    """One rollout + update, as OnPolicyRunner.learn runs it."""
    obs = env.get_observations()
    alg.train_mode()
    with torch.inference_mode():
        for _ in range(NUM_STEPS):
            obs, rewards, dones, extras = env.step(alg.act(obs))
            alg.process_env_step(obs, rewards, dones, extras)
        alg.compute_returns(obs)
    return alg.update()


def _state(alg) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
            for name, module in (("actor", alg.actor.finetuned), ("critic", alg.critic))}


def _spy_on_gradient_reduction(alg, record: list[dict]) -> None:
    """Keep the local and the reduced gradients of the first mini-batch of every update."""
    reduce = alg._reduce_gradients

    def spy(train_actor: bool) -> None:
        params = list(alg.critic.parameters()) + (alg.actor.trainable_parameters() if train_actor else [])
        first = not record or record[-1]["iteration"] != alg.iteration
        local = [None if p.grad is None else p.grad.clone() for p in params]
        reduce(train_actor)
        if first:
            record.append({
                "iteration": alg.iteration, "train_actor": train_actor, "local": local,
                "reduced": [None if p.grad is None else p.grad.clone() for p in params],
                "actor_has_grad": any(p.grad is not None for p in alg.actor.trainable_parameters()),
            })

    alg._reduce_gradients = spy


def _sync_scenario(rank: int, ckpt: str) -> dict:
    env, alg = _build(rank, ckpt)
    grads: list[dict] = []
    _spy_on_gradient_reduction(alg, grads)
    out = {"init": _state(alg)}
    alg.broadcast_parameters()
    out["states"] = [_state(alg)]
    out["losses"] = []
    for _ in range(SYNC_ITERATIONS):
        out["losses"].append(_iterate(env, alg))
        out["states"].append(_state(alg))
    out["grads"] = grads
    return out


def _inflate_kl(surrogate):
    """``clipped_surrogate`` whose reported approximate KL is 1 nat higher."""
    def inflated(*args, **kwargs):
        result = surrogate(*args, **kwargs)
        return dataclasses.replace(result, approx_kl=result.approx_kl + 1.0)

    return inflated


def _kl_scenario(rank: int, ckpt: str) -> dict:
    out = {}
    # a tiny target: every rank stops at the same mini-batch
    env, alg = _build(rank, ckpt, num_learning_epochs=5, mini_batch_size=40, critic_warmup_iterations=0,
                      target_kl=1e-9, actor_learning_rate=1e-2)
    alg.broadcast_parameters()
    out["tiny"] = _iterate(env, alg)
    out["tiny_state"] = _state(alg)
    # rank 1 alone measures a KL above the target; the ranks' mean is above it too, so both stop at once
    # (a per-rank decision would leave rank 0 waiting in the next gradient all-reduce)
    if rank == 1:
        dppo_algorithm.clipped_surrogate = _inflate_kl(dppo_algorithm.clipped_surrogate)
    env, alg = _build(rank, ckpt, num_learning_epochs=5, mini_batch_size=20, critic_warmup_iterations=0,
                      target_kl=0.3)
    alg.broadcast_parameters()
    out["skewed"] = _iterate(env, alg)
    out["skewed_state"] = _state(alg)
    # unequal rollouts would give unequal mini-batch counts: refused on every rank at construction
    try:
        _build(rank, ckpt, num_envs=NUM_ENVS + rank)
        out["unequal"] = "built"
    except ValueError as error:
        out["unequal"] = str(error)
    return out


_SCENARIOS = {"sync": _sync_scenario, "kl": _kl_scenario}


def _worker(rank: int, port: int, ckpt: str, scenario: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE,
                            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    try:
        torch.save(_SCENARIOS[scenario](rank, ckpt), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(scenario: str, ckpt: str, out_dir: Path) -> list[dict]:
    """Run ``scenario`` on WORLD_SIZE processes; fail (and kill them) if they do not finish in time."""
    context = mp.spawn(_worker, args=(_free_port(), ckpt, scenario, str(out_dir)), nprocs=WORLD_SIZE, join=False)
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    try:
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD_SIZE} ranks of '{scenario}' did not finish in {JOIN_TIMEOUT_S:.0f} s "
                            f"(deadlocked collective?)")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]


# ---------------------------------------------------------------------------------------------- checks
def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ranks_stay_bit_identical_and_average_their_gradients(checkpoint, tmp_path):
    r0, r1 = run_ranks("sync", checkpoint, tmp_path)

    # the broadcast replaced rank 1's own critic init by rank 0's
    assert not same(r0["init"]["critic"], r1["init"]["critic"])
    assert same(r0["init"]["critic"], r0["states"][0]["critic"])
    # (a) after the broadcast and after every update: fine-tuned actor and critic (normaliser included) identical
    for it, (s0, s1) in enumerate(zip(r0["states"], r1["states"])):
        for name in ("actor", "critic"):
            assert same(s0[name], s1[name]), f"{name} differs across ranks after {it} updates"
    assert any("obs_normalizer" in key for key in r0["states"][-1]["critic"])
    # the normaliser's statistics hold both ranks' samples: 3 iterations x 2 ranks x E x N decisions
    count = next(v for k, v in r0["states"][-1]["critic"].items() if k.endswith("count"))
    assert int(count) == SYNC_ITERATIONS * WORLD_SIZE * NUM_ENVS * (NUM_STEPS // 2)
    # (b) training moved them: the critic from the first update, the actor after the warm-up
    start, warm, end = r0["states"][0], r0["states"][1], r0["states"][-1]
    assert not same(start["critic"], warm["critic"]) and same(start["actor"], warm["actor"])
    assert not same(start["actor"], end["actor"]) and not same(warm["critic"], end["critic"])
    for losses in zip(r0["losses"], r1["losses"]):
        assert losses[0]["gradient_steps"] == losses[1]["gradient_steps"] == 4  # 2 epochs x 40 / 20

    # (c) the gradient each rank steps with is the mean of the ranks' local gradients
    g0, g1 = r0["grads"], r1["grads"]
    assert [g["iteration"] for g in g0] == list(range(SYNC_ITERATIONS)) == [g["iteration"] for g in g1]
    assert [g["train_actor"] for g in g0] == [False, True, True]
    assert not g0[0]["actor_has_grad"] and not g1[0]["actor_has_grad"]  # warm-up: the actor has no gradient
    for a, b in zip(g0, g1):
        assert len(a["local"]) == len(b["local"])
        assert any(not torch.equal(x, y) for x, y in zip(a["local"], b["local"]) if x is not None)
        for x, y, rx, ry in zip(a["local"], b["local"], a["reduced"], b["reduced"]):
            assert (x is None) == (y is None) == (rx is None) == (ry is None)
            if x is None:
                continue
            assert torch.equal(rx, ry)
            torch.testing.assert_close(rx, (x + y) / 2, rtol=1e-6, atol=1e-10)


def test_target_kl_stop_and_rollout_size_agree_across_ranks(checkpoint, tmp_path):
    r0, r1 = run_ranks("kl", checkpoint, tmp_path)
    tiny0, tiny1 = r0["tiny"], r1["tiny"]
    # 1 mini-batch per epoch out of 5: the KL of the first is 0 (the rollout's own policy), the second stops
    assert tiny0["gradient_steps"] == tiny1["gradient_steps"] == 2
    assert tiny0["kl_stop_epoch"] == tiny1["kl_stop_epoch"] == 1
    assert tiny0["approx_kl"] == tiny1["approx_kl"] > 0  # the logged KL is the ranks' mean
    # rank 1's inflated KL alone crosses the target; the mean does too, so both stop after 1 of 10 mini-batches
    skew0, skew1 = r0["skewed"], r1["skewed"]
    assert skew0["gradient_steps"] == skew1["gradient_steps"] == 1
    assert skew0["kl_stop_epoch"] == skew1["kl_stop_epoch"] == 0
    assert skew0["approx_kl"] == skew1["approx_kl"] > 0.3
    for key in ("tiny_state", "skewed_state"):
        assert all(same(r0[key][name], r1[key][name]) for name in ("actor", "critic"))
    for rank in (r0, r1):
        assert "every rank needs the same rollout size" in rank["unequal"]
        assert "num_envs ranges over 10..11" in rank["unequal"]
