"""The episode-outcome classifier (where a failed episode stopped), on synthetic flags: no simulation."""

import torch

from vt_refine.tasks.assembly.mdp.rewards import OUTCOMES, classify_outcome


def test_each_stage_is_named_by_the_first_thing_that_did_not_happen():
    t, f = True, False
    #            assembled lifted near aligned on_table  -> outcome
    cases = [((t, t, t, t, f), "assembled"),
             ((t, f, f, f, t), "assembled"),  # success wins whatever else was seen (e.g. pushed in without lifting)
             ((f, f, f, f, t), "not_grasped"),
             ((f, t, f, f, t), "dropped"),  # lifted, back on the table without reaching the socket
             ((f, t, f, f, f), "not_aligned"),  # still in the hand, never over the socket's axis
             ((f, t, t, f, t), "not_aligned"),  # reached the socket off its axis, then fell off it
             ((f, t, t, t, t), "aligned_not_inserted"),
             ((f, t, t, t, f), "aligned_not_inserted")]
    flags = torch.tensor([c[0] for c in cases])
    got = classify_outcome(*flags.T)
    assert [OUTCOMES[i] for i in got.tolist()] == [c[1] for c in cases]
    assert got.dtype == torch.long and len(set(OUTCOMES)) == len(OUTCOMES)


def test_the_progress_potential_rises_to_zero_at_the_assembled_pose():
    from vt_refine.tasks.assembly.mdp.rewards import progress_potential

    xy = torch.tensor([0.0, 0.0, 0.03, 0.05, 0.5])
    height = torch.tensor([0.0, -0.01, 0.04, 0.0, 0.0])  # below the assembled height counts as at it
    phi = progress_potential(xy, height, distance_scale=0.1)
    assert torch.allclose(phi, torch.tensor([0.0, 0.0, -0.5, -0.5, -1.0]))


def test_the_progress_term_telescopes_to_the_change_of_potential_and_restarts_at_a_reset(monkeypatch):
    """A shaped return is potential(end) - potential(start); the first step after a reset adds 0."""
    from types import SimpleNamespace

    import vt_refine.tasks.assembly.mdp.rewards as rewards

    env = SimpleNamespace(num_envs=2, device="cpu", step_dt=0.5)
    term = rewards.assembly_progress(SimpleNamespace(params={}), env)
    rule = SimpleNamespace(assembled_plug_z=0.0)
    path = [0.10, 0.08, 0.09, 0.02, 0.0]  # the plug's distance to its assembled pose, both envs
    returns = torch.zeros(2)
    for i, d in enumerate(path):
        monkeypatch.setattr(rewards, "assembly_error",
                            lambda env, z, d=d: (torch.tensor([d, d]), torch.zeros(2), torch.zeros(2)))
        reward = term(env, rule, distance_scale=0.1) * env.step_dt  # what the manager adds
        if i == 0:
            assert torch.equal(reward, torch.zeros(2))  # nothing before the first reading
        returns += reward
    assert torch.allclose(returns, torch.full((2,), 1.0))  # from -1 (at 0.1 m) to 0
    term.reset(torch.tensor([1]))
    monkeypatch.setattr(rewards, "assembly_error", lambda env, z: (torch.tensor([0.0, 0.1]), torch.zeros(2),
                                                                   torch.zeros(2)))
    reward = term(env, rule, distance_scale=0.1) * env.step_dt
    assert torch.allclose(reward, torch.tensor([0.0, 0.0]))  # env 0 stayed put; env 1 restarts from its new state
