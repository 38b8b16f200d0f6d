"""On/off switches of the export levers, read from the environment (default on)."""
from __future__ import annotations

import os


def switch_on(name: str) -> bool:
    """Whether the environment variable ``name`` leaves its lever on: anything but 0/false/no/off (default on)."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")
