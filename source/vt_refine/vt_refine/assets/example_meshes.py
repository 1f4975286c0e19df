"""A worked example of the real-mesh path: a plug and a socket that are not stacks of z-prisms, written the way
scaled AutoMate files are stored (mm, divided by a non-uniform per-axis scale, an off-centre origin shared by both
files in their assembled configuration), and the task overrides that load them.

The pair: a tube with a 52 mm flange that rests on the socket's rim and a ball knob on top, into a socket tube
whose lower part bulges out, with a 26 mm bore and a conical lead-in (2 mm radial play). The ball and the bulge
give the surfaces vertices at hundreds of heights, as exported CAD has; with fewer than 400 heights the layered
decomposition still takes them as stacks of thin slabs (socket 57 pieces, plug 20, within 0.3 mm). A part with
more heights, or one not made of z-slabs, goes to CoACD (tests/test_convex_decomposition.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

EXAMPLE_SCALE = (2.0, 2.0, 2.5)
"""Per-axis scale the files are stored with (AutoMate's scaled variants are non-uniform)."""
EXAMPLE_ORIGIN_MM = (31.0, -12.0, 7.5)
"""Where the files' shared origin lies from the assembly's axis on the table [mm, before the scale]."""
EXAMPLE_FILES = ("tube_plug.obj", "bulb_socket.stl")


def flanged_tube_pair() -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """The plug and the socket in the socket frame at their assembled pose [m]."""
    tube = trimesh.creation.revolve(np.array([
        (0.0, 0.0), (0.010, 0.0), (0.011, 0.001), (0.011, 0.040), (0.026, 0.040), (0.026, 0.046), (0.011, 0.046),
        (0.011, 0.095), (0.0, 0.095)]), sections=64)
    knob = trimesh.creation.icosphere(subdivisions=3, radius=0.012)
    knob.apply_translation((0.0, 0.0, 0.093))
    # a 44 mm socket tube whose lower part bulges to 50 mm (the bulge is no prism); the rim stays flat
    tube_body = trimesh.creation.cylinder(radius=0.022, height=0.0908, sections=64)
    tube_body.apply_translation((0.0, 0.0, 0.0454))
    bulge = trimesh.creation.icosphere(subdivisions=4, radius=0.025)
    bulge.apply_scale((1.0, 1.0, 0.8))
    bulge.apply_translation((0.0, 0.0, 0.035))
    body = trimesh.boolean.union([tube_body, bulge], engine="manifold")
    bore = trimesh.creation.revolve(np.array([(0.0, 0.0308), (0.013, 0.0308), (0.013, 0.0858), (0.018, 0.0918),
                                              (0.0, 0.0918)]), sections=64)
    socket = trimesh.boolean.difference([body, bore], engine="manifold")
    plug = trimesh.boolean.union([tube, knob], engine="manifold")
    plug.apply_translation((0.0, 0.0, 0.0508))  # the flange on the rim
    return plug, socket


def write_scaled(mesh: trimesh.Trimesh, path: str | Path, scale=EXAMPLE_SCALE, origin_mm=EXAMPLE_ORIGIN_MM) -> Path:
    """Write a mesh [m] as a scaled file stores it: in mm, relative to ``origin_mm``, divided by ``scale``."""
    out = mesh.copy()
    out.vertices = (out.vertices * 1000.0 - np.asarray(origin_mm)) / np.asarray(scale)
    out.export(str(path))
    return Path(path)


def write_flanged_example(folder: str | Path) -> list[str]:
    """Write the example pair into ``folder``; returns the ``env.task`` overrides that load it (for the bayonet
    task, whose kind of fit it is)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plug, socket = flanged_tube_pair()
    write_scaled(plug, folder / EXAMPLE_FILES[0])
    write_scaled(socket, folder / EXAMPLE_FILES[1])
    scale = "[" + ",".join(str(v) for v in EXAMPLE_SCALE) + "]"
    return [f"env.task.mesh_dir={folder.resolve()}", f"env.task.plug_mesh={EXAMPLE_FILES[0]}",
            f"env.task.socket_mesh={EXAMPLE_FILES[1]}", f"env.task.plug_scale={scale}",
            f"env.task.socket_scale={scale}", "env.task.mesh_unit_scale=0.001", "env.task.yaw_symmetry=0"]
