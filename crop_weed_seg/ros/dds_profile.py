"""The Fast DDS XML profile, named in the variable the installed Fast DDS reads.

Fast DDS 3.x (Kilted and later) reads ``FASTDDS_DEFAULT_PROFILES_FILE`` (and warns that the old
name is deprecated when ``FASTRTPS_DEFAULT_PROFILES_FILE`` is set); Fast DDS 2.x (Humble 2.6,
Jazzy 2.14) reads only ``FASTRTPS_DEFAULT_PROFILES_FILE``. Naming the profile in the wrong one
leaves that process on Fast DDS's defaults (large images then mostly never arrive: measured on
the Jazzy wheels, README "Large images over DDS"). Which generation is installed: ``ROS_DISTRO``
when ROS is sourced, else the installed ``ros-fastdds`` / ``ros-fastrtps`` wheel; when neither
tells, both variables are set. Standard library only: it runs before rclpy is imported.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

FAST_DDS_3 = "FASTDDS_DEFAULT_PROFILES_FILE"
FAST_DDS_2 = "FASTRTPS_DEFAULT_PROFILES_FILE"
PROFILE_VARIABLES = (FAST_DDS_3, FAST_DDS_2)
#: Distributions whose Fast DDS is 2.x.
DISTROS_ON_FAST_DDS_2 = frozenset({"foxy", "galactic", "humble", "iron", "jazzy"})


def installed_fast_dds_major() -> int | None:
    """The major version of the Fast DDS wheel in this environment (None: none found)."""
    for name in ("ros-fastdds", "ros-fastrtps"):
        try:
            return int(importlib.metadata.version(name).split(".")[0])
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return None


def profile_variables(env: Mapping[str, str] | None = None,
                      major: int | None = None) -> tuple[str, ...]:
    """The variable(s) this environment's Fast DDS reads."""
    env = os.environ if env is None else env
    distro = env.get("ROS_DISTRO", "").strip().lower()
    if distro:
        return (FAST_DDS_2,) if distro in DISTROS_ON_FAST_DDS_2 else (FAST_DDS_3,)
    major = installed_fast_dds_major() if major is None else major
    if major == 2:
        return (FAST_DDS_2,)
    if major is not None and major >= 3:
        return (FAST_DDS_3,)
    return PROFILE_VARIABLES


def set_default_profile(env: MutableMapping[str, str], profile: Path | str) -> bool:
    """Name ``profile`` for this environment's Fast DDS unless ``env`` names a profile already
    in either variable (a team's own DDS set-up wins). Returns whether it set one."""
    if any(env.get(name) for name in PROFILE_VARIABLES):
        return False
    for name in profile_variables(env):
        env[name] = str(profile)
    return True


def profile_overrides(profile: Path | str | None,
                      env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Environment changes giving ``profile`` to this environment's Fast DDS: its variable set,
    the other one removed (None); both removed when ``profile`` is None."""
    wanted = profile_variables(env) if profile is not None else ()
    return {name: (str(profile) if name in wanted else None) for name in PROFILE_VARIABLES}
