"""TEST CODE ONLY: recording FAKES of ``launch`` and ``launch_ros`` for the launch-file tests
(test/parameters/test_launch_config.py, test/sim/test_sim_launch.py).

``install(monkeypatch)`` puts the fake modules of :data:`FAKED` into ``sys.modules`` and
returns the list every fake class appends itself to when built; :func:`load_launch_file` loads
a launch file as a module; :func:`node_actions` runs a launch file's OpaqueFunction on its
default arguments; :func:`resolve` says what a fake substitution gives on a robot where the
package share is the repository.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Mapping

import pytest

from support import REPO

# FAKES: ``launch`` and ``launch_ros`` cannot be installed here (not on PyPI), so the tests put
# these recording stand-ins into sys.modules. They record constructor arguments and nothing
# else: they check the launch file's *description* (which classes it builds, with what), not
# how the real launch system runs it. On a robot the real classes run (the colcon test only
# installs the file).


class Recorder:
    """FAKE of a ``launch``/``launch_ros`` class: records its constructor arguments."""

    created: list[Recorder] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Recorder.created.append(self)
        self.args, self.kwargs = args, kwargs

    @property
    def kind(self) -> str:
        return type(self).__name__


#: The fake modules and their classes: what launch/crop_weed_seg.launch.py and
#: launch/sim.launch.py import (a class one launch file does not use is harmless to the other).
FAKED = {"launch": ["LaunchDescription"],
         "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction", "LogInfo",
                            "ExecuteProcess", "RegisterEventHandler", "EmitEvent"],
         "launch.event_handlers": ["OnProcessExit"], "launch.events": ["Shutdown"],
         "launch.substitutions": ["PathJoinSubstitution"],
         "launch_ros": [], "launch_ros.actions": ["Node"],
         "launch_ros.substitutions": ["FindPackageShare"]}


def install(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    """Puts the FAKE launch/launch_ros modules in place (undone by ``monkeypatch``); returns the
    (fresh) list of what was built."""
    for module_name, classes in FAKED.items():
        module = types.ModuleType(module_name)
        module.__doc__ = "FAKE for tests (test/support/fake_launch.py)."
        for cls in classes:
            setattr(module, cls, type(cls, (Recorder,), {"__doc__": "FAKE " + cls}))
        monkeypatch.setitem(sys.modules, module_name, module)
    Recorder.created = []
    return Recorder.created


def resolve(value: Any) -> str:
    """What a FAKE substitution (a string, a list of them, ``FindPackageShare('crop_weed_seg')``
    or ``PathJoinSubstitution``) gives on a robot where the package share is the repository."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(resolve(part) for part in value)
    if value.kind == "FindPackageShare":
        assert value.args == ("crop_weed_seg",)
        return str(REPO)
    assert value.kind == "PathJoinSubstitution", value.kind
    return str(Path(*[resolve(part) for part in value.args[0]]))


def load_launch_file(path: Path, module_name: str) -> types.ModuleType:
    """The launch file at ``path``, executed as a fresh module named ``module_name`` (it imports
    ``launch``/``launch_ros`` when run: :func:`install` the fakes first)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node_actions(launch: types.ModuleType, environment: dict[str, str] | None,
                 arguments: Mapping[str, str]) -> list[Recorder]:
    """What the launch file's OpaqueFunction (``launch._node_actions``) builds for its default
    arguments updated by ``arguments`` and the process ``environment``. Package-share defaults
    resolve to the repository, as DeclareLaunchArgument's FindPackageShare default would on a
    robot."""
    values = {name: str(REPO / default[len(launch.SHARE):])
              if default.startswith(launch.SHARE) else default
              for name, (default, _) in launch.ARGUMENTS.items()}
    values.update(arguments)
    context = types.SimpleNamespace(launch_configurations=values,
                                    environment={} if environment is None else environment)
    actions: list[Recorder] = launch._node_actions(context)
    return actions
