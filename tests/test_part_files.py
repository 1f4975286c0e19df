"""Real part meshes through the user path (vt_refine.assets.part_files and ``env.task.mesh_dir``): files of any
name, per-axis scales, an assembled pose in the files' own frame, an off-centre origin, a flange; the measured
play, the cross-section grasp, the collider and the success rule; clear errors for unusable files."""

from __future__ import annotations


import numpy as np
import pytest
import trimesh

from vt_refine.assets.part_files import (
    MeshFileNotFoundError,
    MeshFormatError,
    load_assembly_from_files,
    load_part_mesh,
)
from vt_refine.assets.example_meshes import EXAMPLE_ORIGIN_MM, EXAMPLE_SCALE, flanged_tube_pair, write_scaled
from vt_refine.assets.part_designs import make_assembly
from vt_refine.assets.parts import GRIPPER_MAX_OBJECT_WIDTH, MM, AssemblySpecError

SCALE = np.array(EXAMPLE_SCALE)  # AutoMate's scaled variants are non-uniform
ORIGIN = np.array(EXAMPLE_ORIGIN_MM)  # mm: where the files' origin sits, away from the part (as CAD exports do)


def _write_scaled(mesh: trimesh.Trimesh, path, origin_mm=ORIGIN):
    return write_scaled(mesh, path, SCALE, origin_mm)


@pytest.fixture(scope="module")
def flanged(tmp_path_factory):
    """The worked example's files under other names: a flanged tube with a knob, a bulging socket (not prisms)."""
    folder = tmp_path_factory.mktemp("meshes")
    tube, socket = flanged_tube_pair()
    _write_scaled(tube, folder / "my_plug_part.obj")
    _write_scaled(socket, folder / "the_socket.stl")
    return folder, tube, socket


def _load(folder, **kw):
    args = dict(plug_scale=SCALE, socket_scale=SCALE, unit_scale=1e-3)
    args.update(kw)
    return load_assembly_from_files("00446", folder / "my_plug_part.obj", folder / "the_socket.stl", **args)


def test_scaled_off_centre_files_load_in_the_frame_convention(flanged):
    folder, tube, socket = flanged
    g = _load(folder)  # the files share the assembly frame: the default assembled pose is their origin
    np.testing.assert_allclose(g.socket.extents, socket.extents, atol=1e-6)
    np.testing.assert_allclose(g.socket.bounds[0][2], 0.0, atol=1e-9)  # re-centred: on the table, on its axis
    np.testing.assert_allclose(g.socket.bounds[0][:2] + g.socket.bounds[1][:2], 0.0, atol=1e-6)
    assert g.assembled_plug_z == pytest.approx(0.0508, abs=1e-6)  # converted from the files' frame
    assert g.plug.bounds[0, 2] == pytest.approx(0.0, abs=1e-9)
    assert g.clearance == pytest.approx(2.0 * MM, abs=0.1 * MM)  # measured by sliding the plug sideways
    assert g.seated and g.socket_held_while_inserting
    assert g.plug_mass == pytest.approx(tube.volume * 1050.0, rel=1e-4)


def test_assembled_pose_given_in_the_socket_file_frame(tmp_path):
    """Files not in their assembled configuration: the plug written at its own origin, the pose given in the
    socket file's units; the loader converts it (the user never re-centres anything)."""
    tube, socket = flanged_tube_pair()
    plug_alone = tube.copy()
    plug_alone.apply_translation((0.0, 0.0, -0.0508))
    _write_scaled(plug_alone, tmp_path / "p.obj", origin_mm=np.zeros(3))
    _write_scaled(socket, tmp_path / "s.obj")
    pos = (-ORIGIN + np.array([0.0, 0.0, 50.8])) / SCALE  # the plug file's origin, in socket file units
    g = load_assembly_from_files("00446", tmp_path / "p.obj", tmp_path / "s.obj", plug_scale=SCALE,
                                 socket_scale=SCALE, unit_scale=1e-3, assembled_plug_pos=tuple(pos))
    assert g.assembled_plug_z == pytest.approx(0.0508, abs=1e-6)
    with pytest.raises(AssemblySpecError, match="drop another 5.0 mm"):  # 5 mm too high: floats over its seat
        load_assembly_from_files("00446", tmp_path / "p.obj", tmp_path / "s.obj", plug_scale=SCALE,
                                 socket_scale=SCALE, unit_scale=1e-3, assembled_plug_pos=tuple(pos + (0, 0, 2)))
    floating = load_assembly_from_files("00446", tmp_path / "p.obj", tmp_path / "s.obj", plug_scale=SCALE,
                                        socket_scale=SCALE, unit_scale=1e-3, assembled_plug_pos=tuple(pos + (0, 0, 2)),
                                        seated=False)  # a stored pose without a seat may float
    assert floating.assembled_plug_z == pytest.approx(0.0558, abs=1e-6) and not floating.seated
    with pytest.raises(AssemblySpecError, match="overlaps the socket"):  # 30 mm too low: buried
        load_assembly_from_files("00446", tmp_path / "p.obj", tmp_path / "s.obj", plug_scale=SCALE,
                                 socket_scale=SCALE, unit_scale=1e-3, assembled_plug_pos=tuple(pos - (0, 0, 12)))


def test_grasp_width_comes_from_the_cross_section_not_the_flange(flanged):
    folder, _, _ = flanged
    g = _load(folder)
    assert g.plug_grasp.width == pytest.approx(22.0 * MM, abs=0.3 * MM)  # the tube, not the 52 mm flange
    lo, hi = g.plug_grasp.height_range
    assert lo > 0.046  # the pads' band stays above the flange
    assert g.plug_grasp.symmetry_order == 8  # round
    # not on the round bulge (the pads would touch it along a line) but on the 44 mm tube above it
    assert g.socket_grasp.width == pytest.approx(44.0 * MM, abs=0.3 * MM) and g.socket_grasp.height_range[0] > 0.044


def test_bad_files_get_one_clear_error(tmp_path, flanged):
    folder, tube, _ = flanged
    good = folder / "the_socket.stl"
    with pytest.raises(MeshFileNotFoundError, match="not found"):
        load_assembly_from_files("00446", tmp_path / "missing.obj", good)
    (tmp_path / "plug.step").write_text("ISO-10303-21;")
    with pytest.raises(MeshFormatError, match=r"Unsupported mesh extension '\.step'"):
        load_assembly_from_files("00446", tmp_path / "plug.step", good)
    open_tube = tube.copy()
    open_tube.update_faces(np.arange(len(open_tube.faces)) > 3)  # punch a hole
    open_tube.export(tmp_path / "open.obj")
    with pytest.raises(MeshFormatError, match="not watertight"):
        load_assembly_from_files("00446", tmp_path / "open.obj", good, unit_scale=1.0)
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(MeshFormatError):
        load_assembly_from_files("00446", tmp_path / "empty.obj", good)
    with pytest.raises(MeshFormatError, match="unit_scale"):  # mm files read as metres: 100 m parts
        load_assembly_from_files("00446", folder / "my_plug_part.obj", good, plug_scale=SCALE, socket_scale=SCALE)
    with pytest.raises(MeshFormatError, match="scale"):
        load_assembly_from_files("00446", folder / "my_plug_part.obj", good, plug_scale=(1.0, -1.0, 1.0))


def test_procedural_parts_round_trip_through_files(tmp_path):
    """Every procedural assembly written as scaled files comes back with its play, height and grasp widths."""
    for key in ("00186", "00581", "00081", "00007"):
        g = make_assembly(key)
        _write_scaled(g.assembled_plug(), tmp_path / f"{key}_p.obj")
        _write_scaled(g.socket, tmp_path / f"{key}_s.ply")
        h = load_assembly_from_files(key, tmp_path / f"{key}_p.obj", tmp_path / f"{key}_s.ply", plug_scale=SCALE,
                                     socket_scale=SCALE, unit_scale=1e-3, seated=g.seated)
        assert h.assembled_plug_z == pytest.approx(g.assembled_plug_z, abs=1e-5), key
        assert h.clearance == pytest.approx(g.clearance, abs=0.1 * MM), key
        assert h.socket_held_while_inserting == g.socket_held_while_inserting, key
        for site in (h.plug_grasp, h.socket_grasp):
            assert 0 < site.width < GRIPPER_MAX_OBJECT_WIDTH


def test_usd_files_apply_transforms_units_and_skip_guides(tmp_path):
    from pxr import Gf, Usd, UsdGeom, Vt

    g = make_assembly("00186")
    path = tmp_path / "socket.usda"
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)  # centimetres
    xform = UsdGeom.Xform.Define(stage, "/socket")
    xform.AddTranslateOp().Set(Gf.Vec3d(30.0, -20.0, 5.0))
    xform.AddRotateZOp().Set(90.0)  # swaps the box's x and y extents
    for name, purpose in (("visual", UsdGeom.Tokens.default_), ("collision_proxy", UsdGeom.Tokens.guide)):
        mesh = UsdGeom.Mesh.Define(stage, f"/socket/{name}")
        scale = 100.0 if purpose == UsdGeom.Tokens.default_ else 300.0  # the guide mesh is 3x bigger
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy((g.socket.vertices * scale).astype(np.float32)))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(g.socket.faces), 3, dtype=np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(g.socket.faces.ravel().astype(np.int32)))
        mesh.CreatePurposeAttr(purpose)
    stage.GetRootLayer().Save()
    loaded = load_part_mesh(path)
    np.testing.assert_allclose(loaded.extents, np.asarray(g.spec.socket_bbox)[[1, 0, 2]], atol=1e-5)
    assert loaded.is_watertight and loaded.volume == pytest.approx(g.socket.volume, rel=1e-4)


def test_usd_quads_are_triangulated_and_left_handed_meshes_flipped(tmp_path):
    from pxr import Usd, UsdGeom

    cube = trimesh.creation.box(extents=(0.03, 0.04, 0.05))
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    corners = np.array([[x, y, z] for x in (-0.015, 0.015) for y in (-0.02, 0.02) for z in (0.0, 0.05)])
    for orientation, faces in ((UsdGeom.Tokens.rightHanded, quads),
                               (UsdGeom.Tokens.leftHanded, [f[::-1] for f in quads])):
        path = tmp_path / f"cube_{orientation}.usda"
        stage = Usd.Stage.CreateNew(str(path))
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        mesh = UsdGeom.Mesh.Define(stage, "/cube")
        mesh.CreatePointsAttr([tuple(p) for p in corners])
        mesh.CreateFaceVertexCountsAttr([4] * 6)
        mesh.CreateFaceVertexIndicesAttr([i for f in faces for i in f])
        mesh.CreateOrientationAttr(orientation)
        stage.GetRootLayer().Save()
        loaded = load_part_mesh(path)
        assert len(loaded.faces) == 12 and loaded.is_watertight and loaded.is_winding_consistent
        assert loaded.volume == pytest.approx(cube.volume, rel=1e-6)


@pytest.mark.sim
def test_a_task_builds_from_mesh_files_with_collider_grasp_and_success_rule(flanged, tmp_path, monkeypatch):
    """The user path: ``env.task.mesh_dir`` with other file names, scales and units; the bulging socket's collider
    pieces fill it and keep its bore open, the success rule is sized to the measured play, and a plug placed at the
    assembled pose counts."""
    import torch
    from pxr import Usd, UsdGeom

    from vt_refine.app.envs import make_env
    from vt_refine.tasks.assembly.geometry import assembly_geometry
    from vt_refine.tasks.assembly.mdp.success import assembly_success

    folder, _, _ = flanged
    monkeypatch.setenv("VT_REFINE_CACHE_DIR", str(tmp_path / "cache"))
    scale = "[" + ",".join(str(v) for v in SCALE) + "]"
    # the command-line path: Hydra overrides of env.task, as `isaaclab train ... env.task.mesh_dir=...` gives them
    overrides = [f"env.task.mesh_dir={folder}", "env.task.plug_mesh=my_plug_part", "env.task.socket_mesh=the_socket.stl",
                 f"env.task.plug_scale={scale}", f"env.task.socket_scale={scale}", "env.task.mesh_unit_scale=0.001",
                 "env.task.yaw_symmetry=0"]
    env = make_env("VTRefine-Bayonet-Aloha", num_envs=1, device="cpu", seed=0, overrides=overrides)
    try:
        geometry = assembly_geometry(env.cfg.task)
        assert geometry.plug_grasp.width == pytest.approx(22.0 * MM, abs=0.3 * MM)
        from vt_refine.assets.parts_usd import collision_pieces

        expected, method = collision_pieces(geometry.socket, geometry.clearance)
        assert method.startswith(("layered", "CoACD")), method
        stage = Usd.Stage.Open(env.cfg.scene.socket.spawn.usd_path)
        pieces = [p for p in Usd.PrimRange(stage.GetPrimAtPath("/part/collision")) if p.IsA(UsdGeom.Mesh)]
        assert len(pieces) == len(expected) and 2 <= len(pieces) <= 64
        # the pieces keep the bore open: the assembled plug's tube is not inside them
        import manifold3d

        def solid(m):
            return manifold3d.Manifold(manifold3d.Mesh64(vert_properties=np.array(m.vertices, np.float64),
                                                         tri_verts=np.array(m.faces, np.uint64)))

        plug = solid(geometry.assembled_plug())
        assert sum((solid(p) ^ plug).volume() for p in expected) < 1e-9  # < 1 mm^3
        # ...and fill the socket: the bulge is not lost (the layered slabs measured 98.9 % of its volume)
        union = manifold3d.Manifold.batch_boolean([solid(p) for p in expected], manifold3d.OpType.Add)
        assert union.volume() > 0.95 * geometry.socket.volume
        rule = env.cfg.rewards.success.params["rule"]
        assert rule.xy_threshold >= geometry.clearance
        env.reset()
        for _ in range(3):
            env.step(torch.zeros(1, 16))
        from isaaclab.utils.math import quat_apply

        socket = env.scene["socket"].data
        for offset, expected in (((0.0, 0.0, 0.0), True), ((0.005, 0.0, 0.0), False), ((0.0, 0.0, 0.006), False)):
            pos = socket.root_pos_w.torch + quat_apply(socket.root_quat_w.torch, torch.tensor(
                [[offset[0], offset[1], geometry.assembled_plug_z + offset[2]]]))
            env.scene["plug"].write_root_pose_to_sim_index(root_pose=torch.cat([pos, socket.root_quat_w.torch], -1))
            env.scene["plug"].write_root_velocity_to_sim_index(root_velocity=torch.zeros(1, 6))
            env.scene.update(dt=0.0)
            assert bool(assembly_success(env, rule).all()) == expected, offset
    finally:
        env.close()
