"""Channels of every point of the policy's merged cloud (env, dataset, encoder and plots agree on these).

A point is (x, y, z, value, flag): metres in the camera frame, the taxel reading in [0, 1] (0 for visual
points), and 1 for a taxel point, 0 for a visual one. Visual points come first in the merged cloud.
"""

POINT_CHANNELS: tuple[str, ...] = ("x", "y", "z", "value", "flag")
VALUE_CHANNEL = 3
FLAG_CHANNEL = 4
