"""Reinforcement-learning fine-tuning of the pre-trained policies (DPPO: :mod:`vt_refine.rl.dppo`).

May import ``policies`` and ``utils`` (and rsl-rl, Isaac Lab's rsl-rl wrapper); no task, no env cfg.
"""
