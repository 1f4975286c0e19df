"""Warp kernels of the penetration-based (Kelvin-Voigt) taxel model.

Legend: E envs, P pads per env, N taxels per pad, T contact targets per env.

A first launch over (E, P) flags the pads whose bounding sphere comes near any target's bounding sphere (a
pad-level cull: most pads touch nothing most of the time). One launch over (E, P, N) then computes, per taxel: its world position, its penetration depth into the
contact targets, the contact normal, the rate of that depth, the normal force and the contact flag.
Target meshes are stored once, in their own body frame, and shared by all envs; each env only brings
the target poses and twists, so memory does not grow with the number of envs.

Quaternions are (x, y, z, w), Warp's and Isaac Lab 3.0's convention.
"""

from __future__ import annotations

import warp as wp

__all__ = [
    "SIGN_METHODS",
    "mesh_query_floor_kernel",
    "pad_near_target_kernel",
    "taxel_force_kernel",
]

SIGN_METHODS: dict[str, int] = {"normal": 0, "winding": 1, "ray_vote": 2, "parity": 3}
"""Inside/outside tests of ``wp.mesh_query_point*``: angle-weighted pseudo normal (fast, needs a
watertight mesh), generalised winding number (robust to holes, slowest), three axis rays' majority vote,
ray parity. The kernel receives the integer code."""

_DEGENERATE_DEPTH = wp.constant(1.0e-9)  # [m] below this the closest-point direction is noise; use the face normal


@wp.func
def _query_signed(mesh_id: wp.uint64, point: wp.vec3, max_dist: float, sign_method: int) -> wp.MeshQueryPoint:
    # one helper so the inside test is chosen at run time without four copies of the kernel
    if sign_method == 1:
        return wp.mesh_query_point_sign_winding_number(mesh_id, point, max_dist)
    if sign_method == 2:
        return wp.mesh_query_point(mesh_id, point, max_dist)
    if sign_method == 3:
        return wp.mesh_query_point_sign_parity(mesh_id, point, max_dist)
    return wp.mesh_query_point_sign_normal(mesh_id, point, max_dist)


@wp.kernel
def pad_near_target_kernel(
    pad_bound_center: wp.array(dtype=wp.vec3),  # (P,) bounding-sphere centre of each pad's taxels, pad frame [m]
    pad_bound_radius: wp.array(dtype=wp.float32),  # (P,) [m]
    pad_pos_w: wp.array2d(dtype=wp.vec3),  # (E, P) [m]
    pad_quat_w: wp.array2d(dtype=wp.quat),  # (E, P) xyzw
    target_pos_w: wp.array2d(dtype=wp.vec3),  # (E, T) [m]
    target_quat_w: wp.array2d(dtype=wp.quat),  # (E, T) xyzw
    target_bound_center: wp.array(dtype=wp.vec3),  # (T,) target frame [m]
    target_bound_radius: wp.array(dtype=wp.float32),  # (T,) [m]
    use_cull: wp.int32,
    margin: wp.float32,  # [m] slack: the deepest penetration the query reports
    pad_near: wp.array2d(dtype=wp.int32),  # (E, P) output: 1 when some target may touch a taxel of the pad
):
    env, pad = wp.tid()
    near = int(1)
    if use_cull != 0:
        near = int(0)
        center_w = pad_pos_w[env, pad] + wp.quat_rotate(pad_quat_w[env, pad], pad_bound_center[pad])
        for target in range(target_bound_center.shape[0]):
            target_center_w = target_pos_w[env, target] + wp.quat_rotate(
                target_quat_w[env, target], target_bound_center[target]
            )
            reach = pad_bound_radius[pad] + target_bound_radius[target] + margin
            if wp.length(center_w - target_center_w) <= reach:
                near = int(1)
    pad_near[env, pad] = near


@wp.kernel
def taxel_force_kernel(
    # taxel layout, shared by all envs
    taxel_pos_local: wp.array2d(dtype=wp.vec3),  # (P, N) taxel centres in the pad body frame [m]
    # pad body states
    pad_pos_w: wp.array2d(dtype=wp.vec3),  # (E, P) [m]
    pad_quat_w: wp.array2d(dtype=wp.quat),  # (E, P) xyzw
    pad_lin_vel_w: wp.array2d(dtype=wp.vec3),  # (E, P) velocity of the pad body origin [m/s]
    pad_ang_vel_w: wp.array2d(dtype=wp.vec3),  # (E, P) [rad/s]
    # target body states
    target_pos_w: wp.array2d(dtype=wp.vec3),  # (E, T) [m]
    target_quat_w: wp.array2d(dtype=wp.quat),  # (E, T) xyzw
    target_lin_vel_w: wp.array2d(dtype=wp.vec3),  # (E, T) velocity of the target body origin [m/s]
    target_ang_vel_w: wp.array2d(dtype=wp.vec3),  # (E, T) [rad/s]
    # target geometry, shared by all envs
    target_mesh_ids: wp.array(dtype=wp.uint64),  # (T,) wp.Mesh ids, mesh in the target body frame
    target_bound_center: wp.array(dtype=wp.vec3),  # (T,) bounding-sphere centre in the target body frame [m]
    target_bound_radius: wp.array(dtype=wp.float32),  # (T,) bounding-sphere radius [m]
    # switches and parameters
    env_mask: wp.array(dtype=wp.bool),  # (E,) envs to update (others keep their outputs)
    use_env_mask: wp.int32,
    pad_near: wp.array2d(dtype=wp.int32),  # (E, P) from pad_near_target_kernel
    use_cull: wp.int32,
    sign_method: wp.int32,
    max_depth: wp.float32,  # [m] deepest penetration the query can report
    k_n: wp.float32,  # [N/m]
    k_d: wp.float32,  # [N s/m]
    f_max: wp.float32,  # [N]
    # outputs
    taxel_pos_w: wp.array3d(dtype=wp.vec3),  # (E, P, N) [m]
    depth: wp.array3d(dtype=wp.float32),  # (E, P, N) [m], >= 0
    depth_rate: wp.array3d(dtype=wp.float32),  # (E, P, N) [m/s], > 0 when pressing in
    contact_normal_w: wp.array3d(dtype=wp.vec3),  # (E, P, N) unit, out of the target surface
    force: wp.array3d(dtype=wp.float32),  # (E, P, N) [N]
    contact: wp.array3d(dtype=wp.bool),  # (E, P, N)
    target_index: wp.array3d(dtype=wp.int32),  # (E, P, N) deepest target, -1 when none
):
    env, pad, taxel = wp.tid()
    if use_env_mask != 0:
        if not env_mask[env]:
            return

    pad_quat = pad_quat_w[env, pad]
    lever_w = wp.quat_rotate(pad_quat, taxel_pos_local[pad, taxel])
    point_w = pad_pos_w[env, pad] + lever_w
    taxel_pos_w[env, pad, taxel] = point_w

    # A taxel touches one surface, so keep the deepest target rather than summing: a plug seated in a
    # socket overlaps both meshes at once and a sum would count the same contact twice.
    best_depth = float(0.0)
    best_rate = float(0.0)
    best_target = int(-1)
    best_normal_w = wp.vec3(0.0, 0.0, 0.0)
    num_targets = target_mesh_ids.shape[0]
    if pad_near[env, pad] == 0:
        num_targets = 0  # no target near this pad: skip the per-taxel tests
    for target in range(num_targets):
        body_pos = target_pos_w[env, target]
        body_quat = target_quat_w[env, target]
        point_local = wp.quat_rotate_inv(body_quat, point_w - body_pos)
        if use_cull != 0:
            # a point inside the mesh is inside its bounding sphere; skip the BVH walk otherwise
            if wp.length(point_local - target_bound_center[target]) > target_bound_radius[target] + max_depth:
                continue
        mesh_id = target_mesh_ids[target]
        query = _query_signed(mesh_id, point_local, max_depth, sign_method)
        if not query.result:
            continue
        if query.sign >= 0.0:
            continue
        closest_local = wp.mesh_eval_position(mesh_id, query.face, query.u, query.v)
        push_out_local = closest_local - point_local
        penetration = wp.length(push_out_local)
        if penetration > best_depth:
            normal_local = wp.vec3(0.0, 0.0, 0.0)
            if penetration > _DEGENERATE_DEPTH:
                normal_local = push_out_local / penetration
            else:
                normal_local = wp.mesh_eval_face_normal(mesh_id, query.face)
            normal_w = wp.quat_rotate(body_quat, normal_local)
            # velocities of the taxel and of the target material point under it (rigid bodies: v + w x r)
            taxel_vel_w = pad_lin_vel_w[env, pad] + wp.cross(pad_ang_vel_w[env, pad], lever_w)
            surface_vel_w = target_lin_vel_w[env, target] + wp.cross(target_ang_vel_w[env, target], point_w - body_pos)
            best_depth = penetration
            best_rate = -wp.dot(taxel_vel_w - surface_vel_w, normal_w)
            best_target = target
            best_normal_w = normal_w

    # Most taxels touch nothing: their outputs already hold the no-contact values (zeros, index -1) unless
    # they touched something at the previous update, so they skip six writes.
    if best_target < 0 and not contact[env, pad, taxel]:
        return
    taxel_force = float(0.0)
    if best_target >= 0:
        taxel_force = wp.clamp(k_n * best_depth + k_d * best_rate, 0.0, f_max)
    depth[env, pad, taxel] = best_depth
    depth_rate[env, pad, taxel] = best_rate
    contact_normal_w[env, pad, taxel] = best_normal_w
    force[env, pad, taxel] = taxel_force
    contact[env, pad, taxel] = best_target >= 0
    target_index[env, pad, taxel] = best_target


@wp.kernel
def mesh_query_floor_kernel(
    query_points_local: wp.array2d(dtype=wp.vec3),  # (E * P * N, T) points already in each target's frame [m]
    target_mesh_ids: wp.array(dtype=wp.uint64),  # (T,)
    sign_method: wp.int32,
    max_depth: wp.float32,  # [m]
    signed_distance: wp.array2d(dtype=wp.float32),  # (E * P * N, T) output [m]
):
    """The bare mesh-query cost: one signed closest-point query per taxel-target pair, nothing else
    (benchmark floor for :func:`taxel_force_kernel`)."""
    pair, target = wp.tid()
    mesh_id = target_mesh_ids[target]
    point = query_points_local[pair, target]
    query = _query_signed(mesh_id, point, max_depth, sign_method)
    distance = max_depth
    if query.result:
        distance = query.sign * wp.length(wp.mesh_eval_position(mesh_id, query.face, query.u, query.v) - point)
    signed_distance[pair, target] = distance
