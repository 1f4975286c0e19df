"""Open-loop error of a pre-trained policy on demonstrations, per phase of the task, in millimetres.

For demo windows (observation history -> the demo's action chunk) the policy predicts a chunk; both chunks are
mapped to joint targets (the task's [-1, 1] actions through the joint limits) and through each arm's forward
kinematics to its grasp frame, the point midway between the two pads. The error of a window is the mean over the
Te executed steps of the distance between predicted and demonstrated pad centres, per arm, and of the finger
openings. Windows are grouped by the expert's phase at their first step (recorded in the demos as
``states/expert_phase``): approach, grasp, lift, align, insert. A reference repeats the demo's own first action
of the chunk (what a policy that only holds its current target would score), a second holds the last observed
joints (where the demo's target is nearly the joints themselves, e.g. while the fingers close, a policy should
do as well). Each sampler's mean comes with the windows' median and 90th percentile, and with how much of the
demos' variation across windows the policy follows per world axis (the slope of predicted on demonstrated pad
centre: 1 follows each demo, 0 goes to their mean).

Use held-out demos (collected with another seed), not the training windows: the question is whether the policy
generalises where precision matters (align, insert), not whether it memorised.
"""

from __future__ import annotations

from collections.abc import Sequence

PHASE_GROUPS: dict[str, tuple[str, ...]] = {
    "approach": ("pregrasp", "approach"),
    "grasp": ("close",),
    "lift": ("lift",),
    "align": ("align",),
    "insert": ("insert", "release", "retreat"),
}
"""The task's stages, as groups of the scripted expert's phases."""


def pad_centres(actions, lo, hi):
    """Grasp-frame positions of both arms and finger openings for task actions.

    Args:
        actions: Tensor of shape (..., 16) in [-1, 1] (the task's action space).
        lo, hi: Joint limits, Tensors of shape (16,).

    Returns:
        (left, right, fingers): Tensors of shape (..., 3), (..., 3) [m] and (..., 2) [m] (left, right opening).
    """
    return joint_pad_centres(lo + (actions.double().clamp(-1.0, 1.0) + 1.0) * 0.5 * (hi - lo))


def joint_pad_centres(q):
    """(left, right, fingers) as :func:`pad_centres` for joint positions ``q``, Tensor of shape (..., 16) [rad, m]."""
    import torch

    from ..assets.kinematics import ArmKinematics

    flat = q.double().reshape(-1, 16)
    left = ArmKinematics("left").forward(flat[:, 0:6])[:, :3, 3]
    right = ArmKinematics("right").forward(flat[:, 8:14])[:, :3, 3]
    fingers = torch.stack([flat[:, 6] - flat[:, 7], flat[:, 14] - flat[:, 15]], dim=-1)  # mirrored fingers
    shape = q.shape[:-1]
    return left.reshape(*shape, 3), right.reshape(*shape, 3), fingers.reshape(*shape, 2)


def _errors_mm(found, wanted) -> dict:
    """Mean over steps of the distances [mm] between two (left, right, fingers) triples of shape (B, T, .);
    {"left", "right", "fingers"}, each Tensor of shape (B,)."""
    (fl, fr, ff), (wl, wr, wf) = found, wanted
    return {"left": 1000 * (fl - wl).norm(dim=-1).mean(-1), "right": 1000 * (fr - wr).norm(dim=-1).mean(-1),
            "fingers": 1000 * (ff - wf).abs().mean(dim=(-1, -2))}


def chunk_errors_mm(predicted, demo, executed: int, lo, hi) -> dict:
    """Per-window mean errors [mm] over the first ``executed`` steps of two chunks (B, Ta, 16) of task actions:
    {"left", "right", "fingers"}, each Tensor of shape (B,)."""
    return _errors_mm(pad_centres(predicted[:, :executed], lo, hi), pad_centres(demo[:, :executed], lo, hi))


def hold_errors_mm(joint_pos, demo, executed: int, lo, hi) -> dict:
    """Per-window mean errors [mm] of holding the observed joints ``joint_pos`` (B, 16) [rad, m] against the demo
    chunk's first ``executed`` steps (B, Ta, 16) of task actions: {"left", "right", "fingers"}, Tensors (B,)."""
    held = joint_pad_centres(joint_pos[:, None])  # (B, 1, .): broadcast over the steps
    return _errors_mm(held, pad_centres(demo[:, :executed], lo, hi))


def follow_slopes(predicted, demo, executed: int, lo, hi) -> dict:
    """How much of the demos' variation the policy follows, per arm and world axis: the least-squares slope of the
    predicted pad centre on the demo's across windows (each the mean over the first ``executed`` steps). 1: the
    policy goes where each demo goes; 0: to the demos' mean whatever the window. Chunks: (B, Ta, 16) task actions.
    Returns {"left": [x, y, z], "right": [x, y, z]}."""
    found = pad_centres(predicted[:, :executed], lo, hi)
    wanted = pad_centres(demo[:, :executed], lo, hi)
    slopes = {}
    for side, f, w in (("left", found[0], wanted[0]), ("right", found[1], wanted[1])):
        f, w = f.mean(1), w.mean(1)  # (B, 3)
        d = w - w.mean(0)
        slopes[side] = [round(float(v), 2) for v in ((f - w.mean(0)) * d).sum(0) / (d * d).sum(0).clamp_min(1e-12)]
    return slopes


def open_loop_report(policy, dataset, phases, windows_per_phase: int = 64, samplers: Sequence[str] = ("ddim",),
                     seed: int = 0, noises: int = 1) -> dict:
    """The per-phase report (see the module docstring).

    Args:
        policy: A :class:`~vt_refine.policies.diffusion.DiffusionPolicy`.
        dataset: Its demo windows (``__getitem__`` -> {"obs", "actions"}), held out from training.
        phases: Tensor of shape (len(dataset),): the expert's phase index (into ``expert.PHASES``) of each window.
        windows_per_phase: Windows drawn per phase group (fewer where the demos have fewer).
        noises: Initial noises sampled per window (seeds ``seed``, ``seed + 1``, ...); with more than one, the error
            of their mean chunk and their spread around it are reported too.
    """
    import torch

    from ..assets.aloha import ALOHA_JOINT_NAMES, joint_limits
    from ..expert.scripted_expert import PHASES

    limits = joint_limits()
    lo = torch.tensor([limits[n][0] for n in ALOHA_JOINT_NAMES], dtype=torch.float64)
    hi = torch.tensor([limits[n][1] for n in ALOHA_JOINT_NAMES], dtype=torch.float64)
    executed = policy.cfg.act_steps
    generator = torch.Generator().manual_seed(seed)
    report = {"units": "mm at the pad centres (grasp frames) and of the finger openings, mean over the executed steps",
              "executed_steps": executed, "phases": {}}
    for group, names in PHASE_GROUPS.items():
        codes = torch.tensor([PHASES.index(n) for n in names] + ([len(PHASES)] if group == "insert" else []))
        candidates = torch.nonzero(torch.isin(phases.long(), codes)).flatten()
        if len(candidates) == 0:
            continue
        pick = candidates[torch.randperm(len(candidates), generator=generator)[:windows_per_phase]]
        items = [dataset[int(i)] for i in pick]
        obs = {key: torch.stack([item["obs"][key] for item in items]) for key in items[0]["obs"]}
        demo = torch.stack([item["actions"] for item in items])
        entry = {"windows": len(items)}
        for sampler in samplers:
            with torch.no_grad():
                chunks = [policy.predict_chunk(obs, sampler=sampler, deterministic=True,
                                               generator=torch.Generator().manual_seed(seed + n))
                          for n in range(noises)]
            predicted = chunks[0]
            errors = chunk_errors_mm(predicted, demo, executed, lo, hi)
            if noises > 1:  # is the miss the policy's mean or its sampling? Bias of the mean chunk, spread around it
                pads = [torch.stack(p) for p in zip(*(pad_centres(c[:, :executed], lo, hi) for c in chunks))]
                mean = [p.mean(0) for p in pads]  # (left, right, fingers), each (B, Te, .)
                entry[f"{sampler}_mean_of_{noises}_noises"] = {k: round(float(v.mean()), 2) for k, v in _errors_mm(
                    mean, pad_centres(demo[:, :executed], lo, hi)).items()}
                spread = [_errors_mm([p[n] for p in pads], mean) for n in range(noises)]
                entry[f"{sampler}_spread_around_it"] = {k: round(float(torch.stack([e[k] for e in spread]).mean()), 2)
                                                        for k in spread[0]}
            entry[sampler] = {k: round(float(v.mean()), 2) for k, v in errors.items()}
            # a mean of a few large misses (a step early or late) and a uniform imprecision look alike; these tell
            entry[f"{sampler}_median"] = {k: round(float(v.median()), 2) for k, v in errors.items()}
            entry[f"{sampler}_p90"] = {k: round(float(v.quantile(0.9)), 2) for k, v in errors.items()}
            entry[f"{sampler}_follows_demo_variation"] = follow_slopes(predicted, demo, executed, lo, hi)
        entry["reference_repeat_first_action"] = {
            k: round(float(v.mean()), 2) for k, v in
            chunk_errors_mm(demo[:, :1].expand_as(demo), demo, executed, lo, hi).items()}
        entry["reference_hold_observed_joints"] = {
            k: round(float(v.mean()), 2) for k, v in
            hold_errors_mm(obs["joint_pos"][:, -1], demo, executed, lo, hi).items()}
        report["phases"][group] = entry
    return report
