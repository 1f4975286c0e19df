"""The five assemblies on the ALOHA twin: one small cfg per part over the shared base."""

from isaaclab.utils import configclass

from ...assembly_env_cfg import AssemblyEnvCfg, AssemblyTaskCfg
from ...point_cloud_cfg import PointCloudCfg


@configclass
class PegInHoleAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00186: a peg into a block's hole."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(assembly="00186")


@configclass
class NutBoltAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00581: a nut (ring) lowered onto a shaft."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(assembly="00581")


@configclass
class BayonetAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00446: a bayonet sleeve over a slotted post."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(assembly="00446")


@configclass
class ConnectorAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00081: a keyed mechanical connector into its housing."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(assembly="00081")


@configclass
class ShaftCollarAlohaEnvCfg(AssemblyEnvCfg):
    """AutoMate 00007: a collar slid over a shaft."""

    task: AssemblyTaskCfg = AssemblyTaskCfg(assembly="00007")


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
