"""The process's peak resident memory (RSS), with a high-water mark that can be reset.

A peak per Kedro node needs a high-water mark reset before each node runs;
``resource.getrusage(...).ru_maxrss`` is the peak since the process started and cannot be
reset. Linux keeps the same mark as ``VmHWM`` in ``/proc/self/status`` and sets it back to
the current RSS when ``5`` is written to ``/proc/self/clear_refs``. That also lowers
``ru_maxrss`` and the peak a parent reads with ``wait4``: whoever resets it must keep the
marks it clears. GB are 2**30 bytes, as in ``benchmarks/common.py``.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_HIGH_WATER_MARK = "5"
KB_PER_GB = 1024**2
RU_MAXRSS_PER_KB = 1024 if sys.platform == "darwin" else 1  # macOS reports bytes, Linux KB


def reset_peak() -> bool:
    """Set the high-water mark back to the current RSS; False where that is not possible."""
    try:
        CLEAR_REFS.write_text(RESET_HIGH_WATER_MARK)
    except OSError:
        return False
    return True


def peak_rss_gb() -> float:
    """The peak RSS in GB since the process started or since the last :func:`reset_peak`."""
    kb = high_water_mark_kb()
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / RU_MAXRSS_PER_KB
    return kb / KB_PER_GB


def high_water_mark_kb() -> int | None:
    """``VmHWM`` of ``/proc/self/status`` in KB; None without ``/proc`` (macOS)."""
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("VmHWM:"):  # "VmHWM:   421084 kB"
            return int(line.split()[1])
    return None
