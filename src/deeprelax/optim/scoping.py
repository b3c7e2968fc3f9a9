r"""Scoping: a coefficient that grows geometrically with the number of outer steps, up to a cap.

.. math::  c_t = \min\big(c_0\,(1 + s)^t,\; c_{\max}\big),\qquad t = \text{outer steps taken}

for the coupling γ (Entropy-SGD, HEAT, HJ, Parle: larger γ = shorter PDE time, less smoothing) and the
elastic coupling ρ (Elastic-SGD, Parle). ``group["scoping"]`` is s, ``group[name]`` is c₀,
``group[name + "_max"]`` the optional cap, ``group["outer_steps"]`` the counter t (saved in ``state_dict``).
The power is evaluated in log space, ``log c₀ + t·log1p(s)``, and capped *before* exponentiating, so a long
run never overflows (``(1 + 0.1)^7500`` is not a float).
"""

from __future__ import annotations

import math
from typing import Any


def scoped_value(c0: float, scoping: float, t: int, cap: float | None = None) -> float:
    """c₀(1 + s)^t capped at ``cap``, computed without overflow."""
    if c0 == 0.0:
        return 0.0
    if scoping == 0.0 or t == 0:
        return c0 if cap is None else min(c0, cap)
    log_c = math.log(c0) + t * math.log1p(scoping)
    if cap is not None and (cap == 0.0 or log_c >= math.log(cap)):
        return float(cap)  # the cap itself, exactly
    if log_c > 709.0:  # exp would overflow; an uncapped coefficient this large is a configuration error
        raise OverflowError(
            f"scoped coefficient c0·(1 + scoping)^t = exp({log_c:.4g}) overflows at t = {t}; set a cap "
            f"(gamma_max / rho_max)"
        )
    return math.exp(log_c)


def scoped(group: dict[str, Any], name: str) -> float:
    """The scoped ``group[name]`` at the group's current outer step (cap: ``group[name + '_max']``)."""
    return scoped_value(
        float(group[name]), float(group["scoping"]), int(group["outer_steps"]), group.get(name + "_max")
    )
