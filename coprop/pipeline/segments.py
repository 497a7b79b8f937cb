"""Control points and the segments they cut a clip into: validation of a source's 0/1 list, and the
half-open frame ranges that each start at a control point."""
from __future__ import annotations

from typing import Any, Sequence

from coprop.errors import DataError


def validate_control_points(cps: Sequence[int], num_frames: int, where: Any = None) -> list[int]:
    cps = [int(c) for c in cps]
    if len(cps) != num_frames:
        raise DataError(where, f"{len(cps)} control points for {num_frames} frames",
                        "a control-point source must return one 0/1 flag per frame")
    if any(c not in (0, 1) for c in cps):
        raise DataError(where, f"control points must be 0/1, got {sorted(set(cps))}", None)
    if cps and cps[0] != 1:
        raise DataError(where, "the first frame is not a control point (c[0] must be 1)",
                        "every clip starts a segment at frame 0")
    return cps


def segments(control_points: Sequence[int]) -> list[tuple[int, int]]:
    """[1,0,0,1,0] -> [(0, 3), (3, 5)]: half-open frame ranges, each starting at a control point."""
    starts = [t for t, c in enumerate(control_points) if c]
    return [(s, e) for s, e in zip(starts, starts[1:] + [len(control_points)])]
