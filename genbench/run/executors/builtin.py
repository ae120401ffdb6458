"""The built-in executors, registered as a default plugin (the same road as third-party ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.run.executors.process import ProcessExecutor
from genbench.run.executors.ray_tasks import RayExecutor
from genbench.run.executors.serial import SerialExecutor


@hookimpl
def register_executors(register: Callable[[type[Any]], None]) -> None:
    for cls in (SerialExecutor, ProcessExecutor, RayExecutor):
        register(cls)
