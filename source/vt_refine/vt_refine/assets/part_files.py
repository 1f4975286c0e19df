"""Real part meshes: load a plug and a socket from files (AutoMate's OBJ or USD, or any watertight mesh) and
turn them into an :class:`~vt_refine.assets.parts.AssemblyGeometry` the tasks and the expert use as they are.

What a user gives (see :func:`load_assembly_from_files`): the two files, each with a per-axis scale (AutoMate's
scaled variants are non-uniform, e.g. (2, 2, 2.5)), the files' unit, and the assembled pose as the position of
the plug file's origin in the socket file's frame (default: the origin, i.e. the files are already in their
assembled configuration, as AutoMate's are). Files are in the usual frame: z up, insertion along -z.

What is derived: both parts re-centred to the frame convention of :mod:`~vt_refine.assets.parts` (the plug's
origin on the socket's axis, so the assembled pose is a pure z translation; that conversion is done here, not by
the user), the radial play (by sliding the assembled plug sideways until it touches), the grasp sites from the
parts' cross-sections (the narrowest band the pads can close on, high on the plug and low on the socket, never a
band that a wider feature such as a flange shares), masses from the volumes.

Bad files get one clear error: missing, unsupported, empty, not watertight, absurdly sized, or an assembled pose
that buries the plug in the socket.
"""

from __future__ import annotations

import math
import operator
from pathlib import Path

import manifold3d
import numpy as np
import trimesh

from .parts import (
    GRIPPER_ENVELOPE,
    ROUND_GRASP_SYMMETRY,
    AssemblyGeometry,
    AssemblySpec,
    AssemblySpecError,
    DEFAULT_DENSITY,
    GraspSite,
    geometry_from_meshes,
    get_assembly_spec,
    hand_clears,
)

MESH_EXTENSIONS = (".obj", ".stl", ".ply")
USD_EXTENSIONS = (".usd", ".usda", ".usdc")

MIN_PART_SIZE = 0.005
"""Smallest bounding-box extent a part may have [m]; below it the unit or scale is almost surely wrong."""
MAX_PART_SIZE = 0.5
"""Largest bounding-box extent a part may have [m] (the ALOHA workspace is about 0.8 m across)."""
OVERLAP_TOLERANCE = 1e-8
"""Interpenetration volume [m^3] (10 mm^3) above which the assembled pose is refused: the plug would be buried."""
GRASP_STEP = 0.002
"""Spacing of the candidate grasp heights [m]."""
SECTION_STEP = 0.001
"""Spacing of the cross-sections the grasp search reads [m]."""
PAD_HEIGHT = 0.026
"""Height of a FlexiTac pad [m]."""
MIN_CONTACT_SPAN = 0.008
"""Height over which the pads must press on the part [m]: the band's width holds there to ``CONTACT_WIDTH_TOL``."""
CONTACT_WIDTH_TOL = 0.0003
"""Sections this close to the band's width count as pressed [m] (faceting noise; rigid pads touch only the widest)."""
GRASP_AXES = 12
"""Candidate closing axes, evenly spaced over 180 deg (every 15 deg)."""
SYMMETRY_WIDTH_TOL = 0.0005
"""Closing axes whose widths differ by less than this are equivalent grasps [m]."""
PLAY_SEARCH_MAX = 0.02
"""Largest radial play (or drop onto the seat) the searches look for [m]."""
SEAT_TOLERANCE = 0.001
"""A seated plug may float at most this far above its stop in the given assembled pose [m]."""


class MeshFormatError(ValueError):
    """A part mesh file that cannot be used (unsupported extension, no triangles, not watertight, bad size)."""


class MeshFileNotFoundError(FileNotFoundError):
    """A part mesh file that does not exist."""


def _fan_triangles(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given per-face vertex counts and flat indices: array of shape (T, 3)."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    keep = counts >= 3
    counts, starts = counts[keep], starts[keep]
    per_face = counts - 2
    face_of_tri = np.repeat(np.arange(len(counts)), per_face)
    first_tri = np.concatenate(([0], np.cumsum(per_face)[:-1]))
    corner = np.arange(per_face.sum()) - first_tri[face_of_tri] + 1  # 1 .. k-2 within each face
    base = starts[face_of_tri]
    return np.column_stack((indices[base], indices[base + corner], indices[base + corner + 1]))


def _load_usd_mesh(path: Path) -> trimesh.Trimesh:
    """All visible, non-guide UsdGeom.Mesh prims of a stage, in world coordinates and metres."""
    from pxr import Usd, UsdGeom  # deferred: pxr is heavy and only needed for USD files

    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise MeshFormatError(f"Could not open USD stage {path}.")
    meters_per_unit = UsdGeom.GetStageMetersPerUnit(stage)
    xform_cache = UsdGeom.XformCache(Usd.TimeCode.Default())
    parts = []
    for prim in Usd.PrimRange(stage.GetPseudoRoot(), Usd.TraverseInstanceProxies()):
        if not prim.IsA(UsdGeom.Mesh):
            continue
        imageable = UsdGeom.Imageable(prim)
        if (
            imageable.ComputePurpose() == UsdGeom.Tokens.guide
            or imageable.ComputeVisibility() == UsdGeom.Tokens.invisible
        ):
            continue
        usd_mesh = UsdGeom.Mesh(prim)
        points = usd_mesh.GetPointsAttr().Get()
        counts = usd_mesh.GetFaceVertexCountsAttr().Get()
        indices = usd_mesh.GetFaceVertexIndicesAttr().Get()
        if not points or not counts or not indices:
            continue
        triangles = _fan_triangles(np.asarray(counts, dtype=np.int64), np.asarray(indices, dtype=np.int64))
        if usd_mesh.GetOrientationAttr().Get() == UsdGeom.Tokens.leftHanded:
            triangles = triangles[:, ::-1]
        # Gf matrices act on row vectors: p_world = p_local @ M
        matrix = np.array(xform_cache.GetLocalToWorldTransform(prim), dtype=np.float64)
        local = np.asarray(points, dtype=np.float64)
        world = local @ matrix[:3, :3] + matrix[3, :3]
        parts.append(trimesh.Trimesh(vertices=world * meters_per_unit, faces=triangles, process=False))
    if not parts:
        raise MeshFormatError(f"USD file {path} holds no visible UsdGeom.Mesh with faces.")
    return trimesh.util.concatenate(parts)


def load_part_mesh(path: str | Path, scale=(1.0, 1.0, 1.0)) -> trimesh.Trimesh:
    """Load one part mesh (OBJ/STL/PLY via trimesh, USD via pxr), weld duplicate vertices, scale it per axis.

    Args:
        path: mesh file.
        scale: metres per file unit along x, y, z (a float scales all three); USD points are first converted
            with the stage's metersPerUnit.

    Raises:
        MeshFileNotFoundError, MeshFormatError: a missing file, an unsupported one, or one without triangles.
    """
    path = Path(path)
    if not path.is_file():
        raise MeshFileNotFoundError(f"Part mesh file not found: {path}. Check the path (it is resolved from {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix in USD_EXTENSIONS:
        mesh = _load_usd_mesh(path)
    elif suffix in MESH_EXTENSIONS:
        try:
            loaded = trimesh.load(str(path), force="mesh", process=False)
        except Exception as err:  # trimesh raises many types on a damaged file
            raise MeshFormatError(f"{path} could not be read as a {suffix} mesh: {err}") from None
        if not isinstance(loaded, trimesh.Trimesh):
            raise MeshFormatError(f"{path} did not load as a triangle mesh.")
        mesh = loaded
    else:
        allowed = ", ".join(MESH_EXTENSIONS + USD_EXTENSIONS)
        raise MeshFormatError(f"Unsupported mesh extension {suffix!r} for {path}; use one of: {allowed}.")
    if len(mesh.faces) == 0:
        raise MeshFormatError(f"{path} holds no triangles.")
    factors = _scale_vector(scale, "scale")
    # process=True welds the duplicate vertices exporters write per face (AutoMate's files are watertight once welded)
    return trimesh.Trimesh(vertices=np.asarray(mesh.vertices) * factors, faces=mesh.faces, process=True)


def load_assembly_from_files(
    spec_key: str | AssemblySpec,
    plug_path: str | Path,
    socket_path: str | Path,
    *,
    plug_scale=(1.0, 1.0, 1.0),
    socket_scale=(1.0, 1.0, 1.0),
    unit_scale: float = 1.0,
    assembled_plug_pos=(0.0, 0.0, 0.0),
    clearance: float | None = None,
    yaw_symmetry: int = 1,
    seated: bool = True,
    density: float = DEFAULT_DENSITY,
) -> AssemblyGeometry:
    """Build an :class:`AssemblyGeometry` from real part meshes (e.g. AutoMate's plug and socket files).

    Args:
        spec_key: the assembly these files stand in for (see :func:`~vt_refine.assets.parts.get_assembly_spec`).
        plug_path, socket_path: .obj/.stl/.ply (trimesh) or .usd/.usda/.usdc (pxr) files; z up, insertion along -z.
        plug_scale, socket_scale: per-axis (x, y, z) scale of each file (AutoMate's scaled variants: e.g. (2, 2, 2.5)).
        unit_scale: metres per file unit after that scale (0.001 for files in mm).
        assembled_plug_pos: where the plug file's origin lies in the socket file's frame when assembled, in the socket
            file's own (unscaled) units; the default origin means the files are in their assembled configuration.
        clearance: radial play of the fit [m]; None measures it by sliding the assembled plug sideways.
        yaw_symmetry: yaw symmetry of the fit (see :attr:`AssemblyGeometry.yaw_symmetry`); 1 (the default) makes
            the expert align the plug's yaw exactly, which suits any fit.
        seated: whether the plug rests on a hard stop when assembled (False: only the stored pose defines it).
        density: material density for the masses [kg/m^3].

    Raises:
        MeshFileNotFoundError, MeshFormatError: a missing, unreadable, empty, open or absurdly sized mesh.
        AssemblySpecError: an assembled pose that buries the plug in the socket or leaves it above the socket, or a
            part no grasp site fits.
    """
    spec = get_assembly_spec(spec_key)
    unit = _positive(unit_scale, "unit_scale")
    plug_factors = _scale_vector(plug_scale, "plug_scale") * unit
    socket_factors = _scale_vector(socket_scale, "socket_scale") * unit
    plug = _checked(load_part_mesh(plug_path, plug_factors), plug_path, "plug")
    socket = _checked(load_part_mesh(socket_path, socket_factors), socket_path, "socket")

    # the socket's origin: the centre of its box's bottom face; the plug's: on the socket's axis, at its own bottom
    lo, hi = socket.bounds
    socket_origin = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    plug_in_socket_file = np.asarray(assembled_plug_pos, dtype=float).reshape(3) * socket_factors
    plug_origin = np.array([*(socket_origin[:2] - plug_in_socket_file[:2]), plug.bounds[0, 2]])
    socket.apply_translation(-socket_origin)
    plug.apply_translation(-plug_origin)
    assembled_plug_z = float(plug_in_socket_file[2] + plug_origin[2] - socket_origin[2])
    socket_height = float(socket.bounds[1, 2])
    if not -1e-6 <= assembled_plug_z < socket_height:
        raise AssemblySpecError(
            f"the assembled pose puts the plug's bottom {assembled_plug_z * 1000:.1f} mm above the socket's bottom, "
            f"outside [0, {socket_height * 1000:.1f}) mm: check assembled_plug_pos (socket file units) and the scales")
    assembled = plug.copy()
    assembled.apply_translation((0.0, 0.0, assembled_plug_z))
    buried = (_manifold(assembled) ^ _manifold(socket)).volume()
    if buried > OVERLAP_TOLERANCE:
        raise AssemblySpecError(
            f"in the assembled pose the plug overlaps the socket by {buried * 1e9:.0f} mm^3: check assembled_plug_pos "
            "(socket file units), the scales, and that both files share the insertion axis")
    if seated:
        drop = measure_drop(assembled, socket)
        if drop > SEAT_TOLERANCE:
            raise AssemblySpecError(
                f"with seated=True the plug must rest on its stop when assembled, but it would drop another "
                f"{drop * 1000:.1f} mm: check assembled_plug_pos (socket file units) and the scales, or set "
                "seated=False for a fit without a seat")
    play = measure_radial_play(assembled, socket) if clearance is None else _positive(clearance, "clearance")
    socket_in_plug_frame = socket.copy()
    socket_in_plug_frame.apply_translation((0.0, 0.0, -assembled_plug_z))
    plug_grasp = find_grasp_site(plug, "plug", high=True, keep_clear_of=socket_in_plug_frame)
    socket_grasp = find_grasp_site(socket, "socket", high=False)
    return geometry_from_meshes(spec, plug, socket, play, assembled_plug_z, plug_grasp, socket_grasp,
                                operator.index(yaw_symmetry), seated, _positive(density, "density"))


def measure_drop(assembled_plug: trimesh.Trimesh, socket: trimesh.Trimesh) -> float:
    """How far [m] the assembled plug can move down before it touches the socket or the table under it (the
    socket frame's z = 0), to 0.05 mm; at most ``PLAY_SEARCH_MAX``."""
    socket_m = _manifold(socket)
    plug_m = _manifold(assembled_plug)
    hi = min(PLAY_SEARCH_MAX, float(assembled_plug.bounds[0, 2]))  # the table stops a plug through a through-hole
    if hi <= 0.0 or (plug_m.translate((0.0, 0.0, -hi)) ^ socket_m).volume() <= OVERLAP_TOLERANCE / 100:
        return max(hi, 0.0)
    lo = 0.0
    while hi - lo > 5e-5:
        mid = 0.5 * (lo + hi)
        if (plug_m.translate((0.0, 0.0, -mid)) ^ socket_m).volume() > OVERLAP_TOLERANCE / 100:
            hi = mid
        else:
            lo = mid
    return lo


def measure_radial_play(assembled_plug: trimesh.Trimesh, socket: trimesh.Trimesh, directions: int = 8) -> float:
    """Smallest sideways shift [m] (over ``directions`` headings) that makes the assembled plug touch the socket,
    to 0.05 mm: the fit's radial play. Both meshes in the socket frame."""
    socket_m = _manifold(socket)
    plug_m = _manifold(assembled_plug)
    lifted = plug_m.translate((0.0, 0.0, 1e-4))  # off a seat it rests on: only the sides count
    play = PLAY_SEARCH_MAX
    for k in range(directions):
        angle = math.pi * 2 * k / directions
        step = np.array([math.cos(angle), math.sin(angle), 0.0])
        lo, hi = 0.0, play
        if (lifted.translate(tuple(step * hi)) ^ socket_m).volume() <= OVERLAP_TOLERANCE / 100:
            continue  # free this way up to the current best
        while hi - lo > 5e-5:
            mid = 0.5 * (lo + hi)
            if (lifted.translate(tuple(step * mid)) ^ socket_m).volume() > OVERLAP_TOLERANCE / 100:
                hi = mid
            else:
                lo = mid
        play = min(play, hi)
    return float(play)


def find_grasp_site(mesh: trimesh.Trimesh, label: str, high: bool,
                    keep_clear_of: trimesh.Trimesh | None = None) -> GraspSite:
    """The grasp site of a standing part from its cross-sections, taken every ``SECTION_STEP``: the highest
    (``high``) or lowest grasp height whose pad band is narrow enough to close on and where the pads press on the
    part over at least ``MIN_CONTACT_SPAN`` of height (a band's width is that of its widest section: a flange
    in the band would take the pads' whole squeeze, a ball knob touches them along a line), with the hand clear
    of ``keep_clear_of``. The width is measured along the narrowest of ``GRASP_AXES`` closing axes.
    """
    env = GRIPPER_ENVELOPE
    top = float(mesh.bounds[1, 2])
    heights = np.arange(SECTION_STEP / 2, top, SECTION_STEP)
    angles = np.arange(GRASP_AXES) * math.pi / GRASP_AXES
    axes = np.column_stack((np.cos(angles), np.sin(angles)))
    lo = np.full((len(heights), GRASP_AXES), np.inf)
    hi = np.full((len(heights), GRASP_AXES), -np.inf)
    centre = np.zeros((len(heights), 2))
    for i, section in enumerate(mesh.section_multiplane((0, 0, 0), (0, 0, 1), heights)):
        if section is None or len(section.vertices) == 0:
            continue
        points = section.to_3D().vertices[:, :2] if hasattr(section, "to_3D") else section.vertices[:, :2]
        proj = points @ axes.T
        lo[i], hi[i] = proj.min(0), proj.max(0)
        centre[i] = 0.5 * (points.min(0) + points.max(0))
    width = hi - lo  # (Z, A); inf where a height has no section
    highest = max(env.min_center_z, top - 0.5 * PAD_HEIGHT)  # the pad stays on the part where the part allows
    candidates = np.arange(env.min_center_z, min(highest, top) + 1e-9, GRASP_STEP)
    if len(candidates) == 0:
        raise MeshFormatError(f"{label}: the part is {top * 1000:.1f} mm tall, too short for a grasp that keeps the "
                              f"pads {env.min_center_z * 1000:.0f} mm off the table")
    narrowest = np.inf
    for z in (candidates[::-1] if high else candidates):
        band = env.band(float(z), top)
        rows = (heights >= band[0]) & (heights <= band[1])
        if not rows.any() or not np.isfinite(width[rows]).all():
            continue
        band_width = width[rows].max(0)  # (A,)
        best = int(np.argmin(band_width))
        narrowest = min(narrowest, band_width[best])
        pressed = (width[rows, best] >= band_width[best] - CONTACT_WIDTH_TOL).sum() * SECTION_STEP
        if band_width[best] >= env.max_width or pressed < MIN_CONTACT_SPAN:
            continue
        axis = np.array([*axes[best], 0.0])
        mid = float(0.5 * (lo[rows, best].min() + hi[rows, best].max()))
        xy = centre[rows].mean(0)
        across = np.array([-axis[1], axis[0], 0.0])
        point = mid * axis + float(xy @ across[:2]) * across
        site = GraspSite(center=(float(point[0]), float(point[1]), float(z)),
                         closing_axis=tuple(float(v) for v in axis), width=float(band_width[best]),
                         height_range=band, symmetry_order=_symmetry_order(band_width, best))
        if keep_clear_of is not None and not hand_clears(site, keep_clear_of):
            continue
        return site
    raise MeshFormatError(
        f"{label}: no grasp height fits the gripper (narrowest band {narrowest * 1000:.1f} mm, limit "
        f"{env.max_width * 1000:.0f} mm, pads pressed over >= {MIN_CONTACT_SPAN * 1000:.0f} mm"
        f"{', clear of the other part when assembled' if keep_clear_of is not None else ''}); check the scale and "
        "unit_scale")


def _symmetry_order(widths: np.ndarray, best: int) -> int:
    """Equivalent closing axes, read off the widths every 180/GRASP_AXES deg: round, hex, square, or just one."""
    same = np.abs(widths - widths[best]) < SYMMETRY_WIDTH_TOL
    if same.all():
        return ROUND_GRASP_SYMMETRY
    n = len(widths)
    for order in (6, 4):
        step = n * 2 // order  # axes per 360/order deg (the axes span 180 deg)
        if n * 2 % order == 0 and all(same[(best + k * step) % n] for k in range(order // 2)):
            return order
    return 2


def _checked(mesh: trimesh.Trimesh, path, label: str) -> trimesh.Trimesh:
    """Refuse an open or absurdly sized part mesh, naming the file."""
    if not mesh.is_watertight or mesh.volume <= 0:
        raise MeshFormatError(
            f"{label} mesh {path} is not watertight even with duplicate vertices welded ({len(mesh.faces)} faces): "
            "masses, the tactile sensor's inside test and the collision pieces need a closed surface; repair it "
            "(e.g. trimesh.repair.fill_holes, or MeshLab's 'close holes') and try again")
    extents = mesh.extents
    if extents.min() < MIN_PART_SIZE or extents.max() > MAX_PART_SIZE:
        raise MeshFormatError(
            f"{label} mesh {path} is {np.round(extents * 1000, 1).tolist()} mm after scaling, outside "
            f"[{MIN_PART_SIZE * 1000:.0f}, {MAX_PART_SIZE * 1000:.0f}] mm: check unit_scale (0.001 for files in mm) "
            "and the per-axis scale")
    return mesh


def _scale_vector(scale, name: str) -> np.ndarray:
    values = np.broadcast_to(np.asarray(scale, dtype=float), (3,)) if np.ndim(scale) == 0 else np.asarray(scale, float)
    if values.shape != (3,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise MeshFormatError(f"{name} must be a positive number or three positive numbers (x, y, z), got {scale!r}")
    return np.array(values, dtype=float)


def _positive(value, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise AssemblySpecError(f"{name} must be a positive number, got {value!r}")
    return value


def _manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    return manifold3d.Manifold(manifold3d.Mesh64(
        vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
        tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64)))


