#!/usr/bin/env python
"""Fit the simulated taxel's Kelvin-Voigt constants (k_n, k_d) to a measured force curve.

    python scripts/calibrate_tactile.py measurements.csv [--plot fit.png]

The CSV holds either columns depth [m], depth_rate [m/s], force [N] or indentation [m], reading [N]
(optionally time [s]); see vt_refine.sensors.piezo_tactile.calibration. Prints the fitted values, the
residual and the cfg fields to set; exits with code 2 and a one-line message for a missing or bad file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vt_refine.sensors.piezo_tactile import calibration


def _plot(data: calibration.CalibrationData, k_n: float, k_d: float, out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if data.kind == "kelvin_voigt":
        depth, rate, force = (data.columns[c] for c in ("depth", "depth_rate", "force"))
    else:
        depth, force = data.columns["indentation"], data.columns["reading"]
        time = data.columns.get("time")
        rate = np.gradient(depth, time) if time is not None else np.zeros_like(depth)
    fitted = np.clip(k_n * depth + k_d * rate, 0.0, None)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(depth * 1e3, force, ".", ms=3, label="measured")
    ax.plot(depth * 1e3, fitted, ".", ms=3, label=f"k_n={k_n:.4g} N/m, k_d={k_d:.4g} N s/m")
    ax.set_xlabel("penetration [mm]")
    ax.set_ylabel("force [N]")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="measurement CSV (depth,depth_rate,force or indentation,reading[,time])")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png", help="also save measured vs fitted force")
    args = parser.parse_args(argv)
    try:
        data = calibration.load_calibration_csv(args.csv)
        k_n, k_d, rmse = calibration.fit_calibration(data)
    except (calibration.CalibrationFileNotFoundError, calibration.CalibrationFormatError) as error:
        print(f"calibrate_tactile: error: {error}", file=sys.stderr)
        return 2
    result = {"csv": str(args.csv), "kind": data.kind, "k_n": k_n, "k_d": k_d, "rmse": rmse,
              "samples": int(len(next(iter(data.columns.values()))))}
    if args.plot is not None:
        try:
            _plot(data, k_n, k_d, args.plot)
        except OSError as error:
            print(f"calibrate_tactile: error: cannot write the plot '{args.plot}': {error}", file=sys.stderr)
            return 2
        result["plot"] = str(args.plot)
    print(json.dumps(result, indent=2))
    print(f"set PiezoTactileSensorCfg(k_n={k_n:.6g}, k_d={k_d:.6g})  # residual rmse {rmse:.4g} N")
    return 0


if __name__ == "__main__":
    sys.exit(main())
