"""The Kit extension manifest and the GUI backend (Kit itself cannot run here)."""

import ast
import tomllib

import numpy as np
import pytest

import vt_refine
from vt_refine.app import gui_backend


def test_manifest_parses_names_existing_modules_and_carries_the_version(repo_root):
    manifest = tomllib.loads((repo_root / "extension.toml").read_text())
    assert manifest["package"]["version"] == vt_refine.__version__
    modules = manifest["python"]["module"]
    assert {m["name"] for m in modules} == {"vt_refine", "vt_refine_gui"}
    for module in modules:
        package = repo_root / module["path"] / module["name"]
        assert (package / "__init__.py").is_file(), package
    assert (repo_root / manifest["package"]["readme"]).is_file()


def test_only_the_extension_imports_kit(repo_root):
    kit_users = []
    for path in (repo_root / "source").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "omni" or n.startswith("omni.") for n in names):
                kit_users.append(str(path))
    assert kit_users == []
    ext = (repo_root / "exts/vt_refine/vt_refine_gui/extension.py").read_text()
    assert "import omni.ui" in ext and "gui_backend" in ext


def test_tactile_image_layout_and_ramp():
    frame = np.zeros((4, 12, 32), np.float32)
    frame[2, 5, 7] = 2.0
    data, width, height = gui_backend.tactile_rgba(frame, scale=2)
    assert (width, height) == (4 * 33 * 2, 12 * 2)
    image = np.frombuffer(data, np.uint8).reshape(height, width, 4)
    hot = image[5 * 2, (2 * 33 + 7) * 2]
    assert tuple(hot) == (255, 255, 255, 255)  # the maximum maps to white-hot
    assert tuple(image[0, 0]) == (0, 0, 0, 255)  # zero maps to black
    with pytest.raises(ValueError):
        gui_backend.tactile_rgba(np.zeros((12, 32)))


def test_checkpoints_are_found_newest_first(tmp_path):
    import os

    (tmp_path / "a" / "checkpoints").mkdir(parents=True)
    old = tmp_path / "a" / "checkpoints" / "final.pt"
    new = tmp_path / "b" / "model_8.pt"
    new.parent.mkdir()
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    (tmp_path / "b" / "notes.pt").write_bytes(b"x")
    os.utime(old, (1, 1))
    assert gui_backend.find_checkpoints(tmp_path) == [new, old]
    assert gui_backend.find_checkpoints(tmp_path / "missing") == []


def test_task_list_has_the_visual_variants():
    tasks = gui_backend.list_tasks()
    assert "VTRefine-PegInHole-Aloha" in tasks and "VTRefine-PegInHole-Aloha-Visual" in tasks
