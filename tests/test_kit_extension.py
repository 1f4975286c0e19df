"""The Omniverse extension loaded by a real Kit: Isaac Sim's Kit kernel (isaacsim-kernel, a side environment made by
tools/kit_venv.sh) starts headless on the CPU, reads the repository's extension.toml, imports the GUI module,
runs on_startup and on_shutdown, and the panel's backend runs in Kit's Python (tests/kit/check_extension.py).

Kit's omni.ui needs a display and is not in the kernel: tests/kit/exts holds a stand-in that records the widgets
built, and empty stand-ins for the manifest's other Kit dependencies (Isaac Lab's packages come from the project's
environment on PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.slow]

TASK = "VTRefine-PegInHole-Aloha"


@pytest.fixture(scope="module")
def kit_python_env(repo_root):
    """Path of the Kit kernel environment (made on first use; `make test` makes it before the suite)."""
    done = subprocess.run(["bash", str(repo_root / "tools" / "kit_venv.sh")], capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"tools/kit_venv.sh failed: {done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1]


def _tiny_checkpoint(path):
    from vt_refine.policies.diffusion import (DiffusionCfg, DiffusionPolicy, DiffusionPolicyCfg, StateEncoderCfg,
                                              UnetCfg, save_checkpoint)

    cfg = DiffusionPolicyCfg(use_point_cloud=False, sampler="ddim", state_encoder=StateEncoderCfg(hidden_dims=(16,)),
                             unet=UnetCfg(down_dims=(16, 32), kernel_size=3, diffusion_step_embed_dim=8),
                             diffusion=DiffusionCfg(denoising_steps=10, ddim_steps=5))
    stats = {"actions": {"min": -np.ones(16), "max": np.ones(16)},
             "joint_pos": {"min": -np.ones(16), "max": np.ones(16)}}
    return save_checkpoint(path, DiffusionPolicy.from_stats(cfg, stats), task_id=TASK)


def test_kit_loads_the_extension_and_its_panel_runs_the_backend(kit_python_env, repo_root, tmp_path):
    exts = tmp_path / "exts"
    exts.mkdir()
    (exts / "vt_refine").symlink_to(repo_root)  # the repository is the extension: its extension.toml at the top
    for stand_in in (repo_root / "tests" / "kit" / "exts").iterdir():
        (exts / stand_in.name).symlink_to(stand_in)
    checkpoint = _tiny_checkpoint(tmp_path / "final.pt")
    result = tmp_path / "result.json"
    site_packages = next(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p))
    env = {**os.environ, "OMNI_KIT_ACCEPT_EULA": "YES", "VT_REFINE_KIT_RESULT": str(result),
           "VT_REFINE_KIT_CHECKPOINT": str(checkpoint),
           # the project's packages; vt_refine's own folder too (an editable install's .pth is read only by site)
           "PYTHONPATH": os.pathsep.join([site_packages, str(repo_root / "source" / "vt_refine")])}
    launcher = os.path.join(kit_python_env, "bin", "isaacsim")
    done = subprocess.run([launcher, "omni.app.empty", "--allow-root", "--no-window", "--ext-folder", str(exts),
                           "--exec", str(repo_root / "tests" / "kit" / "check_extension.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.is_file(), f"Kit wrote no result (exit {done.returncode}):\n{done.stdout[-3000:]}"
    seen = json.loads(result.read_text())
    assert "error" not in seen, seen.get("error")
    assert done.returncode == 0

    # Kit found the manifest and module, and on_startup built the panel over the backend
    assert seen["enabled"] and seen["is_enabled"]
    assert seen["windows"] == ["VT-Refine"]
    assert seen["task_items"] == seen["backend_tasks"] and TASK in seen["task_items"]
    assert seen["buttons"] == ["Newest in outputs/", "Start policy", "Stop"]
    assert seen["status_after_pick"].startswith("no checkpoint under outputs/")
    # the real policy session: in the bare kernel Isaac Lab's Kit-mode stage (omni.usd, Isaac Sim's) is missing,
    # and the panel says so in one line; inside Isaac Sim it runs
    assert (seen["status_real_start"].startswith(f"running {TASK}")
            or "needs Isaac Sim (omni.usd is missing" in seen["status_real_start"]), seen["status_real_start"]
    # Kit's update events step the session and redraw the pads (the hot taxel of pad 2 is white)
    assert seen["status_after_start"] == f"running {TASK} (pretrained policy)"
    assert seen["session_steps"] == 5 and seen["status_after_updates"].startswith("step 5")
    assert seen["image_size"] == [4 * 33 * 4, 12 * 4] and seen["hot_pixel"] == [255, 255, 255, 255]
    # Stop and on_shutdown close the session; no update reaches it afterwards
    assert seen["stopped_session_closed"] and seen["steps_after_stop"] == 5
    assert seen["is_enabled_after_disable"] is False
    assert seen["shutdown_session_closed"] and seen["steps_after_shutdown"] == 0


@pytest.mark.sim
def test_policy_session_steps_an_env_and_reads_the_pads(tmp_path):
    """The session the panel drives, kit-less: one control step per call, the four pads of env 0."""
    from vt_refine.app.gui_backend import PolicySession
    from vt_refine.utils.errors import UserError

    with pytest.raises(UserError, match="does not exist"):
        PolicySession(TASK, tmp_path / "missing.pt")
    session = PolicySession(TASK, _tiny_checkpoint(tmp_path / "final.pt"), device="cpu")
    try:
        infos = [session.step() for _ in range(3)]
    finally:
        session.close()
    assert [info["step"] for info in infos] == [1, 2, 3]
    assert all(info["tactile"].shape == (4, 12, 32) and np.isfinite(info["tactile"]).all() for info in infos)
    assert session.kind == "pretrained" and session.successes == 0
