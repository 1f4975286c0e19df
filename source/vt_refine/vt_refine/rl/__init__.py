"""Reinforcement-learning fine-tuning of the pre-trained policies (DPPO: :mod:`vt_refine.rl.dppo`)."""
