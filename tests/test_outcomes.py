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
