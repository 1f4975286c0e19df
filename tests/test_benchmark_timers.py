"""The env-step split of `vt-refine benchmark --floor`: parts keep their own time, nested calls are not counted
twice (a sensor updated lazily inside an observation term belongs to the sensor only)."""

import time

from vt_refine.app.benchmark import EnvStepTimers


class _Scene:
    def sensor(self):
        time.sleep(0.02)

    def observe(self):
        time.sleep(0.01)
        self.sensor()  # lazily updated when read


def test_nested_parts_keep_their_own_time():
    scene = _Scene()
    timers = EnvStepTimers(sync=lambda: None)
    timers.wrap(scene, "sensor", "sensor")
    timers.wrap(scene, "observe", "observations")
    start = time.perf_counter()
    for _ in range(5):
        scene.observe()
    wall = time.perf_counter() - start
    assert 0.09 <= timers.total["sensor"] < 0.2  # 5 x 20 ms
    assert 0.045 <= timers.total["observations"] < 0.09  # 5 x 10 ms, without the sensor's 20 ms
    assert sum(timers.total.values()) <= wall
