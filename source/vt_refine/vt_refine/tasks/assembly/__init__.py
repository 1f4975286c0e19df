"""Bimanual assembly on the ALOHA twin: scene, MDP terms and per-part task registrations."""
