"""Bradley-Terry maximum a posteriori refit over the whole vote graph.

The online TrueSkill update moves only the two images of a vote, and its result
depends on vote order. A refit of all votes at once lets every vote inform every
image through transitivity (A beat B, B beat C says something about A vs C) and is
order-free, so it ranks better at low and medium budgets. The fit itself lives in
:mod:`common.maths` (training's human rankings use the same one); this module keeps
the ranker's import path.

Example:
    >>> s, v = bt_fit(3, [0, 1], [1, 2], [1.0, 1.0])
    >>> bool(s[0] > s[1] > s[2])
    True
"""

from __future__ import annotations

from common.maths import BT_PROBIT_BETA, bt_fit

__all__ = ["BT_PROBIT_BETA", "bt_fit"]
