"""Facts about the machine a benchmark runs on (device names, file-name slugs, load average, the device to use)
and the /proc reader the memory measurements rest on."""
from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def device_name(device: str) -> str:
    """Human name of the machine a device string runs on (GPU product name or CPU model + core count)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or "cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} ({os.cpu_count()} cores)"


def device_slug(device: str) -> str:
    """Filename-safe device tag, e.g. ``cpu-2c`` or ``cuda-nvidia-h100-80gb-hbm3``."""
    if device.startswith("cuda"):
        name = device_name(device).lower()
        return "cuda-" + "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")
    return f"cpu-{os.cpu_count()}c"


def load_average() -> str:
    """1/5/15-minute load average: the CPU is shared, so every CPU number carries it."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from coprop.errors import ConfigError

        raise ConfigError(f"--device {device} asked for, but torch.cuda.is_available() is False on this machine")
    return device


# --------------------------------------------------------------------------------------------- /proc readers
def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmSize/VmRSS/VmHWM (kB) of a process; empty when it is gone."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmSize", "VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
