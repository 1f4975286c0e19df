#!/usr/bin/env python
"""Time TaxelForceModel.compute against the bare Warp mesh-query floor; print JSON.

    python scripts/benchmark_tactile.py [--device cpu|cuda] [--envs 1 4 16 64] [--repeats 20]

Scene per env: the 4 FlexiTac pads (12 x 32 taxels) and 2 targets (a 33 mm cylinder "plug", a 55 mm box
"socket"). "near": every pad presses 1 mm into a target; "far": targets 0.5 m away (the cull skips them).
The floor is one kernel that only runs a signed mesh_query_point per taxel-target pair on points already
in the target frames: what any mesh-based taxel model must pay at least.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
import warp as wp

try:
    import vt_refine  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source" / "vt_refine"))

from vt_refine.sensors.piezo_tactile import TaxelForceModel, TaxelModelCfg, make_taxel_grid
from vt_refine.sensors.piezo_tactile.kernels import SIGN_METHODS, mesh_query_floor_kernel
from vt_refine.sensors.piezo_tactile.model import quat_rotate_inverse_xyzw

PAD_SIZE = (0.06665, 0.003, 0.026)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sign-method", default="normal", choices=sorted(SIGN_METHODS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    wp.config.log_level = wp.LOG_WARNING  # keep the init banner out of the JSON on stdout
    wp.init()

    faces = [make_taxel_grid(PAD_SIZE, 12, 32, 0.002, face_sign=s)[0] for s in (-1, +1, -1, +1)]
    layout = np.stack(faces).reshape(4, 12, 32, 3)
    plug = trimesh.creation.cylinder(radius=0.0165, height=0.0748, sections=64)
    socket = trimesh.creation.box(extents=(0.055, 0.055, 0.033))
    results = []
    for num_envs in args.envs:
        cfg = TaxelModelCfg(sign_method=args.sign_method, device=args.device)
        model = TaxelForceModel(cfg, layout, [plug, socket], num_envs=num_envs)
        for near in (True, False):
            inputs = _scene(num_envs, near, args.device)
            state = model.compute(*inputs)
            in_contact = int(state.contact.sum())
            compute_ms = _time(lambda: model.compute(*inputs), args.repeats, args.device)
            # query points of every taxel-target pair, expressed in the target frames
            points_w = state.taxel_pos_w.reshape(num_envs, -1, 1, 3)
            local = quat_rotate_inverse_xyzw(inputs[5][:, None], points_w - inputs[4][:, None])
            local = local.reshape(-1, 2, 3).contiguous()
            query_points = wp.from_torch(local, dtype=wp.vec3)
            signed = wp.zeros(local.shape[:2], dtype=wp.float32, device=model.wp_device)
            mesh_ids = model._mesh_ids  # the same wp.Mesh objects the model queries

            def floor():
                wp.launch(mesh_query_floor_kernel, dim=local.shape[:2], device=model.wp_device,
                          inputs=[query_points, mesh_ids, SIGN_METHODS[args.sign_method], cfg.query_margin],
                          outputs=[signed])

            floor_ms = _time(floor, args.repeats, args.device)
            results.append({
                "num_envs": num_envs, "targets": "near" if near else "far", "taxels": num_envs * 4 * 384,
                "taxel_target_pairs": num_envs * 4 * 384 * 2, "taxels_in_contact": in_contact,
                "compute_ms": round(compute_ms, 4), "mesh_query_floor_ms": round(floor_ms, 4),
                "compute_over_floor": round(compute_ms / floor_ms, 3),
            })
    print(json.dumps({"device": args.device, "sign_method": args.sign_method, "torch_threads": 1,
                      "warp": wp.__version__, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
