"""The Kit panel. Kit-only (imports omni.*); all logic lives in ``vt_refine.app.gui_backend``."""

from __future__ import annotations

import omni.ext
import omni.kit.app
import omni.ui as ui

from vt_refine.app import gui_backend


class VTRefineExtension(omni.ext.IExt):
    """Window: task + checkpoint pickers, Start/Stop, live heatmaps of the four FlexiTac pads."""

    def on_startup(self, ext_id: str) -> None:
        self._session = None
        self._update_sub = None
        self._tasks = gui_backend.list_tasks()
        self._image = ui.ByteImageProvider()
        self._window = ui.Window("VT-Refine", width=560, height=320)
        with self._window.frame:
            with ui.VStack(spacing=6):
                with ui.HStack(height=24):
                    ui.Label("Task", width=90)
                    self._task = ui.ComboBox(0, *self._tasks)
                with ui.HStack(height=24):
                    ui.Label("Checkpoint", width=90)
                    self._checkpoint = ui.StringField()
                    ui.Button("Newest in outputs/", width=140, clicked_fn=self._pick_newest)
                with ui.HStack(height=28):
                    ui.Button("Start policy", clicked_fn=self._start)
                    ui.Button("Stop", clicked_fn=self._stop)
                self._status = ui.Label("idle")
                ui.ImageWithProvider(self._image, height=120)

    def _pick_newest(self) -> None:
        found = gui_backend.find_checkpoints("outputs")
        if found:
            self._checkpoint.model.set_value(str(found[0]))
        else:
            self._status.text = "no checkpoint under outputs/ (run `vt-refine pipeline` first)"

    def _start(self) -> None:
        self._stop()
        task = self._tasks[self._task.model.get_item_value_model().as_int]
        try:
            self._session = gui_backend.PolicySession(task, self._checkpoint.model.get_value_as_string())
        except Exception as error:  # shown in the panel: the backend's messages say what to do
            self._status.text = f"cannot start: {error}"
            return
        stream = omni.kit.app.get_app().get_update_event_stream()
        self._update_sub = stream.create_subscription_to_pop(self._on_update, name="vt_refine policy")
        self._status.text = f"running {task} ({self._session.kind} policy)"

    def _on_update(self, _event) -> None:
        info = self._session.step()
        data, width, height = gui_backend.tactile_rgba(info["tactile"], vmax=1.0)
        self._image.set_bytes_data(list(data), [width, height])
        self._status.text = f"step {info['step']}  assembled episodes so far: {self._session.successes}"

    def _stop(self) -> None:
        self._update_sub = None
        if self._session is not None:
            self._session.close()
            self._session = None
            self._status.text = "stopped"

    def on_shutdown(self) -> None:
        self._stop()
        self._window = None
