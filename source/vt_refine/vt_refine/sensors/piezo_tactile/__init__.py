"""Simulated FlexiTac piezoresistive pads: a batched Warp taxel model (Kelvin-Voigt penetration law),
reading normalisation, realism knobs, calibration, and the Isaac Lab sensor wrapping them.

Names are imported on first use (PEP 562) so that, e.g., the calibration tool does not pay for Warp and
Isaac Lab imports, and the Isaac Lab wrapper is only imported where it is used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # taxel_layout
    "TaxelLayoutError": "taxel_layout",
    "make_taxel_grid": "taxel_layout",
    # model
    "TaxelForceModel": "model",
    "TaxelModelCfg": "model",
    "TaxelModelError": "model",
    "TaxelState": "model",
    "as_trimesh": "model",
    "make_tactile_points": "model",
    "points_to_frame": "model",
    "quat_rotate_inverse_xyzw": "model",
    # normalization
    "TactileNormalizationCfg": "normalization",
    "TactileNormalizationError": "normalization",
    "normalize_tactile": "normalization",
    "real_sensor_normalize": "normalization",
    # realism
    "TactileRealism": "realism",
    "TactileRealismCfg": "realism",
    "TactileRealismError": "realism",
    # calibration
    "CalibrationData": "calibration",
    "CalibrationFileNotFoundError": "calibration",
    "CalibrationFormatError": "calibration",
    "fit_calibration": "calibration",
    "fit_from_indentation": "calibration",
    "fit_kelvin_voigt": "calibration",
    "load_calibration_csv": "calibration",
    # Isaac Lab sensor
    "DEFAULT_CAMERA_POS": "sensor_cfg",
    "DEFAULT_CAMERA_ROT": "sensor_cfg",
    "PiezoTactileSensor": "sensor",
    "PiezoTactileSensorCfg": "sensor_cfg",
    "PiezoTactileSensorData": "sensor_data",
    "PiezoTactileSensorError": "sensor_cfg",
    "load_target_mesh": "sensor",
    "look_at_quat_xyzw": "sensor_cfg",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
