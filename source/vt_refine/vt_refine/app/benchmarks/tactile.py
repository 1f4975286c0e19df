"""Time TaxelForceModel.compute against the bare Warp mesh-query floor.

Scene per env: the 4 FlexiTac pads (12 x 32 taxels) and 2 targets (a 33 mm cylinder "plug", a 55 mm box
"socket"). "near": every pad presses 1 mm into a target; "far": targets 0.5 m away (the cull skips them).
The floor is one kernel that only runs a signed mesh_query_point per taxel-target pair on points already
in the target frames: what any mesh-based taxel model must pay at least. The state tensors are the same
objects on every call, as in the sensor (it copies pad and target states into fixed buffers).

With ``env_step_envs`` N > 0 it also steps the real task with N envs, the scripted
expert acting, and splits the env step into the sensor's own update (timed around
``PiezoTactileSensor._update_buffers_impl``) and everything else: the step with and without the sensor.
"""

from __future__ import annotations

import contextlib
import sys
import time

import numpy as np
import torch
import trimesh
import warp as wp

from ...assets.aloha import PAD_SIZE
from ...sensors.piezo_tactile import TaxelForceModel, TaxelModelCfg, make_taxel_grid
from ...sensors.piezo_tactile.kernels import SIGN_METHODS, mesh_query_floor_kernel
from ...sensors.piezo_tactile.model import quat_rotate_inverse_xyzw


def benchmark_tactile(envs: list[int], repeats: int = 20, sign_method: str = "normal", device: str = "cpu",
                      env_step_envs: int = 16, env_step_steps: int = 80,
                      task: str = "VTRefine-PegInHole-Aloha") -> dict:
    """The taxel model against the mesh-query floor for each num_envs in ``envs`` (targets near and far), and
    with ``env_step_envs`` > 0 the sensor's share of the real env step. Times in ms."""
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    wp.config.log_level = wp.LOG_WARNING  # keep the init banner out of the JSON on stdout
    wp.init()

    faces = [make_taxel_grid(PAD_SIZE, 12, 32, 0.002, face_sign=s)[0] for s in (-1, +1, -1, +1)]
    layout = np.stack(faces).reshape(4, 12, 32, 3)
    plug = trimesh.creation.cylinder(radius=0.0165, height=0.0748, sections=64)
    socket = trimesh.creation.box(extents=(0.055, 0.055, 0.033))
    results = []
    for num_envs in envs:
        cfg = TaxelModelCfg(sign_method=sign_method, device=device)
        model = TaxelForceModel(cfg, layout, [plug, socket], num_envs=num_envs)
        for near in (True, False):
            inputs = _scene(num_envs, near, device)
            state = model.compute(*inputs)
            in_contact = int(state.contact.sum())
            compute_ms = _time(lambda: model.compute(*inputs), repeats, device)
            # query points of every taxel-target pair, expressed in the target frames
            points_w = state.taxel_pos_w.reshape(num_envs, -1, 1, 3)
            local = quat_rotate_inverse_xyzw(inputs[5][:, None], points_w - inputs[4][:, None])
            local = local.reshape(-1, 2, 3).contiguous()
            query_points = wp.from_torch(local, dtype=wp.vec3)
            signed = wp.zeros(local.shape[:2], dtype=wp.float32, device=model.wp_device)
            mesh_ids = model._mesh_ids  # the same wp.Mesh objects the model queries

            def floor():
                wp.launch(mesh_query_floor_kernel, dim=local.shape[:2], device=model.wp_device,
                          inputs=[query_points, mesh_ids, SIGN_METHODS[sign_method], cfg.query_margin],
                          outputs=[signed])

            floor_ms = _time(floor, repeats, device)
            results.append({
                "num_envs": num_envs, "targets": "near" if near else "far", "taxels": num_envs * 4 * 384,
                "taxel_target_pairs": num_envs * 4 * 384 * 2, "taxels_in_contact": in_contact,
                "compute_ms": round(compute_ms, 4), "mesh_query_floor_ms": round(floor_ms, 4),
                "compute_over_floor": round(compute_ms / floor_ms, 3),
            })
    report = {"device": device, "sign_method": sign_method, "torch_threads": 1, "warp": wp.__version__,
              "results": results}
    if env_step_envs > 0:
        torch.set_num_threads(default_threads)  # the env runs as it does in training
        with contextlib.redirect_stdout(sys.stderr):  # Isaac Lab's banners; stdout carries only the JSON
            report["env_step"] = env_step_share(task, env_step_envs, device, env_step_steps)
    return report


def _scene(num_envs: int, near: bool, device: str, seed: int = 0):
    """Pad and target states (E, P=4, .) and (E, T=2, .): pads 0, 1 squeeze the plug, pads 2, 3 the socket."""
    rng = np.random.default_rng(seed)
    gap = 0.0165 - 0.001 if near else 0.0165 + 0.5  # pad face 1 mm inside the 33 mm plug (far: 0.5 m off)
    pad_pos = np.zeros((num_envs, 4, 3))
    pad_pos[:, 0, 1], pad_pos[:, 1, 1] = gap + 0.0015, -gap - 0.0015  # faces: -y on pad 0, +y on pad 1
    pad_pos[:, 2, 1], pad_pos[:, 3, 1] = gap + 0.0115 + 0.0015, -gap - 0.0115 - 0.0015  # socket is 55 mm wide
    pad_pos[:, 2:, 0] = 0.3
    pad_pos += rng.normal(0.0, 2e-4, pad_pos.shape)
    pad_quat = np.tile((0.0, 0.0, 0.0, 1.0), (num_envs, 4, 1))
    target_pos = np.zeros((num_envs, 2, 3))
    target_pos[:, 1, 0] = 0.3
    target_quat = np.tile((0.0, 0.0, 0.0, 1.0), (num_envs, 2, 1))

    def t(a):
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    return [t(pad_pos), t(pad_quat), t(rng.normal(0, 0.01, (num_envs, 4, 3))), t(rng.normal(0, 0.1, (num_envs, 4, 3))),
            t(target_pos), t(target_quat), t(np.zeros((num_envs, 2, 3))), t(np.zeros((num_envs, 2, 3)))]


def _time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up (kernel load)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def env_step_share(task: str, num_envs: int, device: str, steps: int, warmup: int = 5) -> dict:
    """Mean env step time and the part of it spent in the tactile sensor's update [ms]."""
    from ...expert import start_expert
    from ..envs import make_env

    env = make_env(task, num_envs=num_envs, device=device, seed=0)
    try:
        sensor = env.unwrapped.scene.sensors["tactile"]
        update, spent = sensor._update_buffers_impl, [0.0, 0]

        def timed_update(env_mask):
            start = time.perf_counter()
            update(env_mask)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            spent[0] += time.perf_counter() - start
            spent[1] += 1

        sensor._update_buffers_impl = timed_update
        _, expert = start_expert(env, seed=0, warmup_steps=warmup)
        spent[:] = [0.0, 0]
        step_time = 0.0
        touching = 0
        for _ in range(steps):
            action = expert.act()
            start = time.perf_counter()
            env.step(action)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            step_time += time.perf_counter() - start
            touching += int(sensor.data.contact.flatten(1).any(dim=1).sum())
        step_ms, sensor_ms = step_time / steps * 1e3, spent[0] / steps * 1e3
        return {"task": task, "num_envs": num_envs, "control_steps": steps, "sensor_updates": spent[1],
                "env_steps_with_a_touching_pad": touching, "env_step_ms": round(step_ms, 2),
                "sensor_update_ms": round(sensor_ms, 3), "env_step_without_sensor_ms": round(step_ms - sensor_ms, 2),
                "sensor_share_of_step": round(sensor_ms / step_ms, 4)}
    finally:
        env.close()
