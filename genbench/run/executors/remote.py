"""Cells run away from the driver: pack a cell's files in the worker, land them in the driver.

A worker runs :func:`run_packed`: the cell runs as usual (:func:`genbench.run.cell.run_cell`)
but with its folder in a private temporary directory, and comes back as a
:class:`~genbench.run.executors.base.PackedCell` (the record and its files' bytes); the
temporary directory is removed. Artifact paths in a record are relative to the run
folder (``cells/<id>/samples.png``), so they hold wherever the files land.

The driver runs :func:`land`, with the same attempt rules as a cell that runs in place
(:mod:`genbench.run.cell`): the cell folder's old ``record.json`` goes first, then every
file the record lists is written atomically and checked against the size and sha256 the
worker recorded, and the record is written last. A driver killed at any moment leaves
either the old state or a folder without a record, which ``--resume`` runs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genbench.errors import DiskFull, GenbenchError, disk_full_error
from genbench.folder import safe_relative
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, CellSpec
from genbench.results import RECORD_JSON, atomic_path, atomic_write_json
from genbench.run.executors.base import CellResult, PackedCell

if TYPE_CHECKING:
    from genbench.run.cell import CellCallback


def run_packed(spec: CellSpec, on_event: CellCallback | None = None, scratch: Path | None = None) -> PackedCell:
    """Run ``spec`` in a private temporary folder (inside ``scratch`` if given, else the system's temporary
    folder); return its record and the bytes of its files. The folder is removed when the cell ends."""
    from genbench.run.cell import run_cell  # here: the registry imports executors, and a cell imports much

    with tempfile.TemporaryDirectory(prefix="genbench-cell-", dir=scratch) as tmp:
        local = dataclasses.replace(spec, out_dir=Path(tmp) / "cells" / spec.cell_id)
        record = run_cell(local, on_event)  # long work inside the cell comes as "work" events, as in serial
        files = {}
        for rel in record.artifacts.values():
            name = Path(rel).name
            files[name] = (local.out_dir / name).read_bytes()
    return PackedCell(record, files)


def worker_disk_full(exc: BaseException, scratch: Path | None = None) -> DiskFull | None:
    """``exc``, raised in a worker, as the DiskFull that stops the grid in the driver (as on ``serial``); None
    when it is not a full disk. run_cell's own DiskFull names the cell's folder; an ENOSPC/EDQUOT around
    it (the worker's scratch disk, not ``--out``, is full too) names the file's folder, else ``scratch``."""
    if isinstance(exc, DiskFull):
        return exc
    full = disk_full_error(exc)
    if full is None:
        return None
    if full.filename:
        return DiskFull(Path(str(full.filename)).parent)
    return DiskFull(scratch if scratch is not None else tempfile.gettempdir())


def failed_cell(spec: CellSpec, reason: str) -> PackedCell:
    """The result of a cell that brought none back (its worker died, its task was lost): ``failed`` with ``reason``."""
    record = CellRecord(spec.cell_id, spec.model, spec.protocol.dataset, spec.seed, dict(spec.hyper))
    record.protocol = spec.protocol.manifest()
    record.status, record.error = "failed", reason
    return PackedCell(record, {})


def land(result: CellResult, spec: CellSpec) -> CellRecord:
    """Write a packed result's files and record into ``spec.out_dir``; return the record.

    A :class:`~genbench.protocol.CellRecord` (the cell ran in place: its files and record are
    already there) is returned as it is. A file that the record lists but that did not come
    back with the bytes of its digest is not written, and the cell is then ``failed``
    (``files damaged in transfer: ...``).
    """
    if isinstance(result, CellRecord):
        return result
    from genbench.run.cell import start_attempt

    record = result.record
    attempt = start_attempt(spec.out_dir)  # the old record goes first: nothing vouches for half-landed files
    record.attempt = record.attempt or attempt
    damaged = []
    for artifact, rel in list(record.artifacts.items()):
        name = Path(rel).name
        data = result.files.get(name)
        digest = record.checksums.get(artifact)
        if (
            safe_relative(rel, ("cells", spec.cell_id)) != ("cells", spec.cell_id, name)
            or data is None
            or digest is None
            or (len(data), hashlib.sha256(data).hexdigest()) != (digest.size, digest.sha256)
        ):
            damaged.append(artifact)
            continue
        with atomic_path(spec.out_dir / name) as tmp:
            tmp.write_bytes(data)
    if damaged:
        for artifact in damaged:
            record.artifacts.pop(artifact, None)
            record.checksums.pop(artifact, None)
        record.status, record.error = "failed", f"files damaged in transfer: {', '.join(sorted(damaged))}"
    atomic_write_json(spec.out_dir / RECORD_JSON, record.to_json())
    return record


# -- plugins added in the driver --------------------------------------------------------------------
@dataclass(frozen=True)
class ShippedPlugin:
    """A plugin added to the driver's registry after it was loaded (a test's fake models, a notebook's
    plugin object), sent to workers: the object itself (pickled), or for a module its name."""

    name: str
    origin: str
    plugin: object = None
    module: str = ""

    def load(self) -> object:
        return importlib.import_module(self.module) if self.module else self.plugin


def shipped_plugins() -> list[ShippedPlugin]:
    """The plugins a worker must add to the registry it builds (default plugins and entry points) to see
    what the driver sees: those added to the driver's registry after loading (``Registry.added``).

    A module goes by name, so one that another process cannot import by that name (built at run
    time, a notebook's or script's ``__main__``) raises GenbenchError: workers would lack its models.
    """
    out = []
    for name, (plugin, origin) in get_registry().added.items():
        if isinstance(plugin, types.ModuleType):
            if not importable(plugin.__name__):
                raise GenbenchError(
                    f"plugin {name!r} ({origin}) is the module {plugin.__name__!r}, which workers cannot import: "
                    "workers import plugins by module name; install it as a package, or use --executor serial"
                )
            out.append(ShippedPlugin(name, origin, module=plugin.__name__))
        else:
            out.append(ShippedPlugin(name, origin, plugin=plugin))
    return out


def importable(module: str) -> bool:
    """Whether another process can import ``module`` by its name (``__main__`` is that process's own)."""
    if module == "__main__":
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails, or a module with no spec (built at run time)
        return False


class PluginNotInstalled(GenbenchError):
    """A worker could not add a plugin the driver has: without it every cell would fail ("unknown model")."""


def install_plugins(plugins: list[ShippedPlugin]) -> None:
    """Add ``plugins`` to this process's registry (in a worker; each once).

    Raises PluginNotInstalled with the registry's reason when one cannot be added: a worker without the
    driver's plugins would fail every cell with "unknown model".
    """
    registry = get_registry()
    present = {p.name for p in registry.plugins}
    for shipped in plugins:
        if shipped.name not in present and not registry.add_plugin(shipped.name, shipped.load, shipped.origin):
            raise PluginNotInstalled(registry.problems[-1])
