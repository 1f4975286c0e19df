"""Domain-randomisation knobs applied to the taxel forces after the Warp kernel.

Legend: E envs, P pads, R x C taxel grid.

Everything is off by default: VT-Refine itself used none of these. Order of application at a sample:
per-taxel gain, dead taxels, multiplicative noise, additive noise, clamp at 0, quantisation; the result is
then held until the next sample of that env (the real FlexiTac reads at 23 Hz while control runs faster).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from isaaclab.utils import configclass

__all__ = ["TactileRealism", "TactileRealismCfg", "TactileRealismError"]


class TactileRealismError(ValueError):
    """Invalid realism setting or input (the message names the offending field)."""


@configclass
class TactileRealismCfg:
    """Sensor imperfections; all zero/off by default (the paper used none)."""

    additive_noise_std: float = 0.0
    """Std of Gaussian noise added to every reading [N]."""

    multiplicative_noise_std: float = 0.0
    """Std of Gaussian noise on the relative gain of every reading, drawn each sample [1]."""

    gain_spread_std: float = 0.0
    """Std of the fixed per-taxel gain around 1 [1]; drawn per env on reset."""

    dead_taxel_prob: float = 0.0
    """Probability that a taxel reads 0 for the whole episode [1]; drawn per env on reset."""

    quantization_step: float = 0.0
    """Reading resolution [N]; 0 keeps full precision."""

    update_rate_hz: float = 0.0
    """Sample-and-hold rate [Hz] with a timer per env (the real pad: 23 Hz); 0 samples at every call."""

    randomize_hold_phase: bool = True
    """Start each env's hold timer at a random phase after a reset, so envs do not all sample together."""

    def validate_config(self) -> None:
        """Raise a clear error naming the first invalid field (run by ``validate()`` of Isaac Lab cfgs)."""
        for name in ("additive_noise_std", "multiplicative_noise_std", "gain_spread_std", "quantization_step",
                     "update_rate_hz"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0.0:
                raise TactileRealismError(f"TactileRealismCfg.{name} must be a finite value >= 0; got {value!r}.")
        if not 0.0 <= self.dead_taxel_prob < 1.0:
            raise TactileRealismError(
                f"TactileRealismCfg.dead_taxel_prob must lie in [0, 1); got {self.dead_taxel_prob!r}."
            )

    @property
    def is_identity(self) -> bool:
        """True when every knob is off (the module then returns its input unchanged)."""
        return not any((self.additive_noise_std, self.multiplicative_noise_std, self.gain_spread_std,
                        self.dead_taxel_prob, self.quantization_step, self.update_rate_hz))


class TactileRealism:
    """Stateful, batched application of :class:`TactileRealismCfg` to taxel forces.

    Args:
        cfg: The knobs.
        num_envs: E.
        taxel_shape: (P, R, C), the per-env reading shape.
        device: Torch device of the state.
        generator: Random stream; the same seed gives the same outputs. None uses torch's global stream.
    """

    def __init__(
        self,
        cfg: TactileRealismCfg,
        num_envs: int,
        taxel_shape: Sequence[int],
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
    ):
        cfg.validate()
        self.cfg = cfg
        self.num_envs = int(num_envs)
        self.shape = (self.num_envs, *(int(s) for s in taxel_shape))
        self.device = torch.device(device)
        self.generator = generator
        self.period = 1.0 / cfg.update_rate_hz if cfg.update_rate_hz > 0.0 else 0.0  # [s]
        self.gain = torch.ones(self.shape, device=self.device)
        """Tensor of shape (E, P, R, C): fixed per-taxel gain of this episode."""
        self.alive = torch.ones(self.shape, dtype=torch.bool, device=self.device)
        """Bool tensor of shape (E, P, R, C): False for dead taxels of this episode."""
        self.held = torch.zeros(self.shape, device=self.device)
        """Tensor of shape (E, P, R, C): the reading currently held [N]."""
        self.time_since_sample = torch.zeros(self.num_envs, device=self.device)
        """Tensor of shape (E,): time since the last sample, phase included [s]."""
        self.needs_sample = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        """Bool tensor of shape (E,): sample at the next call regardless of the timer (set by reset)."""
        self.reset()

    def _randn(self, shape: Sequence[int]) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.generator, device=self.device)

    def _rand(self, shape: Sequence[int]) -> torch.Tensor:
        return torch.rand(tuple(shape), generator=self.generator, device=self.device)

    def reset(self, env_ids: Sequence[int] | torch.Tensor | slice | None = None) -> None:
        """Redraw the per-episode gains and dead taxels of ``env_ids`` (all when None) and make them sample
        at the next call."""
        if env_ids is None:
            env_ids = slice(None)
        elif not isinstance(env_ids, slice):
            env_ids = torch.as_tensor(env_ids, dtype=torch.long, device=self.device)
        count = self.gain[env_ids].shape[0]
        if count == 0:
            return
        cfg = self.cfg
        if cfg.gain_spread_std > 0.0:
            self.gain[env_ids] = torch.clamp(1.0 + cfg.gain_spread_std * self._randn((count, *self.shape[1:])), min=0.0)
        if cfg.dead_taxel_prob > 0.0:
            self.alive[env_ids] = self._rand((count, *self.shape[1:])) >= cfg.dead_taxel_prob
        self.needs_sample[env_ids] = True
        self.held[env_ids] = 0.0

    def __call__(self, force: torch.Tensor, dt: float | torch.Tensor) -> torch.Tensor:
        """Turn ideal forces into sensor readings.

        Args:
            force: Tensor of shape (E, P, R, C), ideal taxel forces [N].
            dt: Time since the previous call [s] (drives the hold timers): a float, or a tensor of shape (E,)
                with one value per env (0 for an env that is not being read).

        Returns:
            Tensor of shape (E, P, R, C): the readings [N] (the module's :attr:`held` buffer).
        """
        if tuple(force.shape) != self.shape:
            raise TactileRealismError(f"force must have shape {self.shape}; got {tuple(force.shape)}.")
        cfg = self.cfg
        reading = force
        if cfg.gain_spread_std > 0.0:
            reading = reading * self.gain
        if cfg.dead_taxel_prob > 0.0:
            reading = reading * self.alive
        if cfg.multiplicative_noise_std > 0.0:
            reading = reading * (1.0 + cfg.multiplicative_noise_std * self._randn(self.shape))
        if cfg.additive_noise_std > 0.0:
            reading = reading + cfg.additive_noise_std * self._randn(self.shape)
        reading = torch.clamp(reading, min=0.0)  # a piezoresistive taxel reads pressure only
        if cfg.quantization_step > 0.0:
            reading = torch.round(reading / cfg.quantization_step) * cfg.quantization_step

        if self.period <= 0.0:
            self.held.copy_(reading)
            self.needs_sample.zero_()
            return self.held

        self.time_since_sample += dt
        timer_due = self.time_since_sample >= self.period - 1e-6  # [s] tolerance for float32 sums of dt
        due = self.needs_sample | timer_due
        # carry the time past the sample instant so the long-run rate is exactly update_rate_hz
        carried = torch.remainder(torch.clamp(self.time_since_sample - self.period, min=0.0), self.period)
        if cfg.randomize_hold_phase:
            restart = self._rand((self.num_envs,)) * self.period  # drawn every call: no host sync on `any()`
        else:
            restart = torch.zeros_like(self.time_since_sample)
        self.time_since_sample = torch.where(
            self.needs_sample, restart, torch.where(timer_due, carried, self.time_since_sample)
        )
        self.needs_sample.zero_()
        self.held.copy_(torch.where(due.view(-1, *([1] * (reading.dim() - 1))), reading, self.held))
        return self.held
