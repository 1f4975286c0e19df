"""Policies learnt from demonstrations: the visuo-tactile diffusion policy lives in :mod:`.diffusion`.

May import ``utils`` only (no env, no Isaac Lab): a policy sees tensors.
"""
