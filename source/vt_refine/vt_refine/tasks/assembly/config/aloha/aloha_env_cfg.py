"""The five assemblies on the ALOHA twin: one small cfg per part over the shared base.

Each part's success rule is sized to its measured fit (``vt_refine.assets.parts``): the xy bound is the radial
play plus a margin (a fully inserted plug can rest anywhere within the play), the tilt bound is above the tilt the
fit allows at full depth (about atan(2 play / engaged length)), and the depth band is a few mm (contact
penetration and a plug resting on its stop). The collar has no seat, so its plug must also be at rest there.
"""

from isaaclab.utils import configclass

from ...assembly_env_cfg import AssemblyEnvCfg, AssemblyTaskCfg
from ...mdp import AssemblySuccessCfg
from ...point_cloud_cfg import PointCloudCfg

MM = 1e-3


@configclass
class PegInHoleAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00186: a peg through a block's hole, stopped by the table."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(
        assembly="00186",
        # play 3.3 mm (3.7 across the flats); in the 33 mm hole the peg can lean atan(6.6 / 33) = 11.3 deg
        success=AssemblySuccessCfg(xy_threshold=4.5 * MM, max_tilt_deg=15.0),
    )


@configclass
class NutBoltAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00581: a nut lowered over a bolt's shank onto its head."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(
        assembly="00581",
        # play 1.9 mm; on the head the 23.4 mm nut can lean atan(3.8 / 23.4) = 9.2 deg
        success=AssemblySuccessCfg(xy_threshold=2.5 * MM, max_tilt_deg=12.0),
    )


@configclass
class BayonetAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00446: a flanged tube into a socket tube, the flange on the rim."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(
        assembly="00446",
        # play 1.8 mm; 40 mm engaged: atan(3.6 / 40) = 5.1 deg, and a seated flange holds it level
        success=AssemblySuccessCfg(xy_threshold=2.5 * MM, max_tilt_deg=8.0),
    )


@configclass
class ConnectorAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00081: a square tube over a post, resting on the housing."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(
        assembly="00081",
        # play 2.35 mm; 32.7 mm engaged: atan(4.7 / 32.7) = 8.2 deg
        success=AssemblySuccessCfg(xy_threshold=3.0 * MM, max_tilt_deg=10.0),
    )


@configclass
class ShaftCollarAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00007: a collar slid over a shaft to its stored pose (no seat)."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(
        assembly="00007",
        # play 3.0 mm; 39.6 mm engaged: atan(6 / 39.6) = 8.6 deg. No seat: a window around the stored height
        # (4 % of the 81.4 mm shaft either way) and at rest, so a collar falling past it does not count
        success=AssemblySuccessCfg(xy_threshold=3.5 * MM, depth_tolerance=3.3 * MM, overshoot_tolerance=3.3 * MM,
                                   max_tilt_deg=10.0, max_speed=0.05),
    )


##
# Visual-only variants (the paper's "visual" baseline): the policy's cloud holds the camera points only
##


@configclass
class PegInHoleAlohaVisualEnvCfg(PegInHoleAlohaEnvCfg):
    point_cloud: PointCloudCfg = PointCloudCfg(include_tactile=False)


@configclass
class NutBoltAlohaVisualEnvCfg(NutBoltAlohaEnvCfg):
    point_cloud: PointCloudCfg = PointCloudCfg(include_tactile=False)


@configclass
class BayonetAlohaVisualEnvCfg(BayonetAlohaEnvCfg):
    point_cloud: PointCloudCfg = PointCloudCfg(include_tactile=False)


@configclass
class ConnectorAlohaVisualEnvCfg(ConnectorAlohaEnvCfg):
    point_cloud: PointCloudCfg = PointCloudCfg(include_tactile=False)


@configclass
class ShaftCollarAlohaVisualEnvCfg(ShaftCollarAlohaEnvCfg):
    point_cloud: PointCloudCfg = PointCloudCfg(include_tactile=False)
