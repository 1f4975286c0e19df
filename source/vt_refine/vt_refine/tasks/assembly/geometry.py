"""The assembly geometry a task cfg describes: the procedural parts of ``task.assembly`` or the real meshes of
``task.mesh_dir``, memoised so that the scene, the observation terms and the expert share one object. Imports
no env cfg (the MDP terms and the env cfg both read it)."""

from __future__ import annotations

import functools


def assembly_geometry(task):
    """The :class:`~vt_refine.assets.parts.AssemblyGeometry` an ``AssemblyTaskCfg`` describes (procedural parts,
    or the real meshes of ``task.mesh_dir``); memoised, so every user of the geometry sees the same object."""
    clearance = None if task.clearance is None else float(task.clearance)
    if task.mesh_dir is None:
        return _procedural_geometry(task.assembly, clearance)
    return _real_geometry(task.assembly, clearance, task.mesh_dir, task.plug_mesh, task.socket_mesh,
                          tuple(task.plug_scale), tuple(task.socket_scale), float(task.mesh_unit_scale),
                          tuple(task.assembled_plug_pos), int(task.yaw_symmetry), bool(task.seated))


@functools.lru_cache(maxsize=32)
def _procedural_geometry(assembly: str, clearance: float | None):
    from vt_refine.assets.part_designs import make_assembly

    return make_assembly(assembly, clearance=clearance)


@functools.lru_cache(maxsize=32)
def _real_geometry(assembly, clearance, mesh_dir, plug_mesh, socket_mesh, plug_scale, socket_scale, unit_scale,
                   assembled_plug_pos, yaw_symmetry, seated):
    from pathlib import Path

    from vt_refine.assets.part_files import load_assembly_from_files
    from vt_refine.utils.errors import UserError

    folder = Path(mesh_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"task.mesh_dir={mesh_dir!r} is not a folder; point it at the folder holding the plug and "
                        "socket meshes")

    def find(name: str, field: str) -> Path:
        if (folder / name).is_file():
            return folder / name
        for ext in (".obj", ".stl", ".ply", ".usd", ".usda", ".usdc"):
            if (folder / f"{name}{ext}").is_file():
                return folder / f"{name}{ext}"
        raise UserError(f"task.{field}={name!r}: no such file (nor {name}.obj/.stl/.ply/.usd) in task.mesh_dir="
                        f"{str(folder)!r}")

    return load_assembly_from_files(
        assembly, find(plug_mesh, "plug_mesh"), find(socket_mesh, "socket_mesh"), plug_scale=plug_scale,
        socket_scale=socket_scale, unit_scale=unit_scale, assembled_plug_pos=assembled_plug_pos, clearance=clearance,
        yaw_symmetry=yaw_symmetry, seated=seated)
