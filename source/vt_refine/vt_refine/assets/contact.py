"""Contact model of the grasping surfaces (pads, fingers) and the parts, written into their USD shapes.

MuJoCo-Warp's default contacts are soft in proportion to the bodies' masses (solref 0.02 s, solimp
0.9-0.95): a 30 g finger squeezing an 80 g part with a few newtons sinks millimetres into it, enough for a
3 mm pad to pass through a triangle-mesh surface. A harder impedance (solimp dmax 0.99) keeps the
penetration a fraction of a millimetre; the time constant stays at 2 x the 120 Hz physics step (MuJoCo's
stability floor). PhysX ignores these ``mjc:`` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContactParams:
    solref: tuple[float, float] = (0.01, 1.0)
    """MuJoCo (time constant [s], damping ratio) of the contact's reference acceleration."""
    solimp: tuple[float, float, float, float, float] = (0.95, 0.99, 0.001, 0.5, 2.0)
    """MuJoCo impedance (d0, dmax, width [m], midpoint, power): how hard the contact is."""


GRASP_CONTACT = ContactParams()
"""Applied to the pads, the fingers and both parts."""


def apply_contact_params(prim, params: ContactParams = GRASP_CONTACT) -> None:
    """Author ``mjc:solref`` / ``mjc:solimp`` on a collision shape prim (read by Newton's MuJoCo solver)."""
    from pxr import Sdf, Vt

    prim.CreateAttribute("mjc:solref", Sdf.ValueTypeNames.DoubleArray).Set(Vt.DoubleArray(list(params.solref)))
    prim.CreateAttribute("mjc:solimp", Sdf.ValueTypeNames.DoubleArray).Set(Vt.DoubleArray(list(params.solimp)))
