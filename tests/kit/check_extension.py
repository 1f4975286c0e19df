"""Run inside Kit (``isaacsim omni.app.empty --exec``) by tests/test_kit_extension.py.

Enables the vt_refine extension through Kit's extension manager, reads back the panel that ``on_startup`` built
(the omni.ui stand-in records it), clicks its buttons, sends Kit update events (the kernel alone has no run loop)
that step the policy session and redraw the pads, disables the extension, and writes
what it saw to the JSON file named by ``VT_REFINE_KIT_RESULT``. Exit code 0 when the script ran to its end (the
test judges the JSON).

The real policy session needs Isaac Lab's Kit-mode stage (``omni.usd``, part of Isaac Sim, not of the bare
kernel): its answer is recorded as it is; the panel's session wiring is then driven with a stand-in session that
returns fixed pad readings, so the update subscription, the heatmap and Stop/shutdown run inside Kit.
"""

import json
import os
import traceback

import numpy as np
import omni.kit.app

RESULT = os.environ["VT_REFINE_KIT_RESULT"]
CHECKPOINT = os.environ["VT_REFINE_KIT_CHECKPOINT"]
TASK = "VTRefine-PegInHole-Aloha"


class StandInSession:
    """The PolicySession interface with fixed pad readings (one hot taxel on pad 2)."""

    instances = []

    def __init__(self, task, checkpoint):
        self.task, self.checkpoint, self.kind = task, checkpoint, "pretrained"
        self.steps, self.successes, self.closed = 0, 0, False
        StandInSession.instances.append(self)

    def step(self):
        self.steps += 1
        tactile = np.zeros((4, 12, 32), np.float32)
        tactile[2, 5, 7] = 1.0
        return {"step": self.steps, "done": False, "success": False, "tactile": tactile}

    def close(self):
        self.closed = True


def _update_event(app):
    """One update event through Kit's update stream, as a frame sends it (a frame run from inside this --exec
    script, i.e. inside the app's startup, deadlocks the app's shutdown)."""
    stream = app.get_update_event_stream()
    stream.push(0)
    stream.pump()


def _widgets(ui, kind):
    return [w for w in ui.BUILT if type(w).__name__ == kind]


def main(app):
    seen = {}
    manager = app.get_extension_manager()
    seen["enabled"] = bool(manager.set_extension_enabled_immediate("vt_refine", True))
    seen["is_enabled"] = manager.is_extension_enabled("vt_refine")
    import omni.ui as ui

    from vt_refine.app import gui_backend

    seen["windows"] = [w.title for w in _widgets(ui, "Window")]
    combo = _widgets(ui, "ComboBox")[0]
    seen["task_items"] = combo.items
    seen["backend_tasks"] = gui_backend.list_tasks()
    buttons = {b.text: b for b in _widgets(ui, "Button")}
    seen["buttons"] = sorted(buttons)
    status = _widgets(ui, "Label")[-1]
    image = _widgets(ui, "ByteImageProvider")[0]

    buttons["Newest in outputs/"].clicked_fn()  # the working folder has no outputs/
    seen["status_after_pick"] = status.text

    combo.model.get_item_value_model().set_value(combo.items.index(TASK))
    _widgets(ui, "StringField")[0].model.set_value(CHECKPOINT)
    buttons["Start policy"].clicked_fn()  # the real session
    seen["status_real_start"] = status.text
    buttons["Stop"].clicked_fn()

    real_session = gui_backend.PolicySession
    gui_backend.PolicySession = StandInSession
    try:
        buttons["Start policy"].clicked_fn()
        seen["status_after_start"] = status.text
        for _ in range(5):  # Kit's update event reaches the panel's subscription: it steps the session, redraws
            _update_event(app)
        seen["session_steps"] = StandInSession.instances[-1].steps
        seen["image_size"] = image.size
        pixels = np.asarray(image.data, np.uint8).reshape(image.size[1], image.size[0], 4)
        seen["hot_pixel"] = pixels[5 * 4, (2 * 33 + 7) * 4].tolist()  # pad 2, row 5, column 7 at scale 4
        seen["status_after_updates"] = status.text

        buttons["Stop"].clicked_fn()
        seen["stopped_session_closed"] = StandInSession.instances[-1].closed
        for _ in range(3):  # no update event reaches a stopped session
            _update_event(app)
        seen["steps_after_stop"] = StandInSession.instances[-1].steps

        buttons["Start policy"].clicked_fn()
        manager.set_extension_enabled_immediate("vt_refine", False)  # on_shutdown stops the running session
        seen["is_enabled_after_disable"] = manager.is_extension_enabled("vt_refine")
        seen["shutdown_session_closed"] = StandInSession.instances[-1].closed
        _update_event(app)
        seen["steps_after_shutdown"] = StandInSession.instances[-1].steps
    finally:
        gui_backend.PolicySession = real_session
    return seen


def run():
    app = omni.kit.app.get_app()
    try:
        seen = main(app)
        code = 0
    except Exception:
        seen = {"error": traceback.format_exc()}
        code = 1
    with open(RESULT, "w") as f:
        json.dump(seen, f, indent=1)
    app.post_quit(code)
    # Kit's own shutdown then deadlocks in this bare kernel once an update subscription has fired from inside an
    # --exec script (measured: the process sleeps on futexes after the result is written), so leave at once
    os._exit(code)


run()
