"""Samples written by another tool: a folder of PNG/JPEG files, or an ``.npz`` array (``genbench eval --images``).

Everything is checked before any evaluation, and every problem is one line naming the
file and what was expected (:class:`~genbench.errors.GenbenchError`, exit status 2).

The policy, the same for every dataset:

* **Which files.** ``--images DIR``: the ``.png``, ``.jpg`` and ``.jpeg`` files directly in
  ``DIR`` (any case), in name order; the first ``--eval-samples`` are evaluated. Hidden
  files (a name starting with ``.``) are skipped; any other file or a sub-folder is an
  error, so a stray file is never silently part of a score. Only PNG and JPEG content is
  decoded, whatever the suffix: another format named ``.png`` (a GIF, a TIFF, an EPS,
  which Pillow would hand to Ghostscript) is an error. ``--images FILE.npz``: one
  array (the only one, else ``images``, ``samples`` or ``arr_0``), laid out
  ``(N, C, H, W)``, ``(N, H, W, C)`` or, for one channel, ``(N, H, W)``; ``uint8`` (0-255)
  or floats in ``[0, 1]``, held to the sample contract (finite, in [0, 1] within its
  tolerance, :mod:`genbench.run.contract`); read without pickle.
* **Size.** Every image must have the dataset's height and width. genbench never
  resizes: the resizing filter changes FID by several points (clean-fid, Parmar et al.
  2022), so that choice stays with the tool that wrote the samples. A folder of mixed
  sizes is an error naming two files of different sizes.
* **Channels.** For a greyscale dataset (C = 1): greyscale images, or RGB ones whose
  three channels are equal (grey saved as RGB); a colour image is an error. For a colour
  dataset (C = 3): RGB, and greyscale replicated to three channels (a grey image is a
  valid, if poor, colour sample). Palette and 1-bit images are converted to RGB or grey
  first. An alpha channel must be fully opaque (transparency has no meaning for FID);
  16-bit and other modes are refused.
* **Lossy files.** JPEG compression changes FID (clean-fid); JPEG files are accepted
  and the record carries a ``lossy`` flag, shown in the table's status column. Whether a
  file is JPEG is read from its content, not its name (JPEG data named ``.png`` is lossy).
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError, choices
from genbench.run.contract import ContractError, check_values
from genbench.run.train import Diverged

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FORMATS = ["PNG", "JPEG"]  # the only decoders Pillow may use, whatever the suffix (EPS would run Ghostscript)
NPZ_KEYS = ("images", "samples", "arr_0")  # the array read from an .npz that holds several
_MODES = {"1": "L", "L": "L", "LA": "LA", "P": "RGBA", "RGB": "RGB", "RGBA": "RGBA"}  # PIL mode -> read as


@dataclass(frozen=True)
class ImageSamples:
    """Images read from files: ``(n, C, H, W)`` float32 in [0, 1], and what they were."""

    images: torch.Tensor
    source: str  # the folder or .npz file
    sha256: str  # of the bytes of the files used (name and content, in order)
    lossy: int  # how many were JPEG
    files: int


def _size_text(info: DataInfo) -> str:
    c, h, w = info.shape
    return f"{h}x{w} ({'greyscale' if c == 1 else f'{c} channels'}, dataset {info.name!r} is {c}x{h}x{w})"


def to_channels(x: torch.Tensor, info: DataInfo, what: str) -> torch.Tensor:
    """``(n, c, H, W)`` with c in 1, 3 -> the dataset's channel count, by the policy above."""
    want, have = info.shape[0], x.shape[1]
    if have == want:
        return x
    if want == 3 and have == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if want == 1 and have == 3:
        if not (torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])):
            raise GenbenchError(
                f"{what}: colour images, but dataset {info.name!r} is greyscale (1x{info.shape[1]}x{info.shape[2]}); "
                "give greyscale images (or RGB with three equal channels)"
            )
        return x[:, :1].contiguous()
    raise GenbenchError(f"{what}: {have} channels; dataset {info.name!r} has {want} (1 or 3 are read)")


def _listing(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GenbenchError(f"--images {folder}: no such folder or .npz file")
    files = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue  # .DS_Store, editor swap files
        if entry.is_dir():
            raise GenbenchError(f"--images {folder}: holds a folder, {entry.name}/; give a flat folder of images")
        if entry.suffix.lower() not in IMAGE_SUFFIXES:
            raise GenbenchError(
                f"--images {folder}: {entry.name} is not an image file; a folder holds only "
                f"{', '.join(IMAGE_SUFFIXES)} files (or give an .npz)"
            )
        files.append(entry)
    if not files:
        raise GenbenchError(f"--images {folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
    return files


def _read_image(path: Path, info: DataInfo, first: tuple[str, tuple[int, int]] | None) -> tuple[np.ndarray, bool]:
    """One image as uint8 ``(c, H, W)`` with c in 1, 3, checked against the dataset's size, and whether
    it was JPEG (by its content, not its name). Only PNG and JPEG are decoded: a file of another format
    (a GIF, TIFF, or an EPS, which Pillow would hand to Ghostscript) is refused whatever its suffix."""
    from PIL import Image, UnidentifiedImageError

    _, h, w = info.shape
    try:
        with Image.open(path, formats=FORMATS) as img:
            lossy = img.format == "JPEG"
            size = (img.height, img.width)
            if size != (h, w):
                mixed = f"; {first[0]} is {first[1][0]}x{first[1][1]}" if first and first[1] != size else ""
                kind = "images of mixed sizes" if mixed else "wrong size"
                raise GenbenchError(
                    f"--images: {kind}: {path.name} is {size[0]}x{size[1]}{mixed}; expected {_size_text(info)}; "
                    "genbench does not resize (the filter changes FID)"
                )
            if img.mode not in _MODES:
                raise GenbenchError(
                    f"--images: {path.name} has mode {img.mode!r}; read are 8-bit {choices(_MODES)} images"
                )
            arr = np.array(img.convert(_MODES[img.mode]))  # a writable copy
    except GenbenchError:
        raise
    except UnidentifiedImageError:
        raise GenbenchError(
            f"--images: {path.name} is not a readable image: not PNG or JPEG content (only "
            f"{' and '.join(FORMATS)} are read, whatever the suffix)"
        ) from None
    except (OSError, ValueError) as exc:
        raise GenbenchError(f"--images: {path.name} is not a readable image ({type(exc).__name__})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] in (2, 4):  # LA, RGBA: the alpha channel must be opaque
        if (arr[:, :, -1] != 255).any():
            raise GenbenchError(f"--images: {path.name} is transparent; give opaque images (alpha 255 everywhere)")
        arr = arr[:, :, :-1]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), lossy


def read_folder(folder: Path, info: DataInfo, n: int) -> ImageSamples:
    """The first ``n`` images of ``folder`` in name order, as the dataset's shape (policy above)."""
    files = _listing(folder)
    if len(files) < n:
        raise GenbenchError(
            f"--images {folder}: {len(files)} images; the protocol compares {n} (--eval-samples): "
            f"add images or pass --eval-samples {len(files)}"
        )
    digest = hashlib.sha256()
    arrays = []
    first: tuple[str, tuple[int, int]] | None = None
    lossy = 0
    for path in files[:n]:
        arr, jpeg = _read_image(path, info, first)
        lossy += jpeg
        first = first or (path.name, (arr.shape[1], arr.shape[2]))
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        arrays.append(arr)
    images = _stack(arrays, info, f"--images {folder}")
    return ImageSamples(images, str(folder), digest.hexdigest(), lossy, n)


def _stack(arrays: list[np.ndarray], info: DataInfo, what: str) -> torch.Tensor:
    """uint8 ``(c, H, W)`` arrays (c in 1, 3, possibly mixed) -> float32 ``(n, C, H, W)`` in [0, 1]."""
    out = torch.empty(len(arrays), *info.shape)
    for i, arr in enumerate(arrays):
        x = torch.from_numpy(arr).unsqueeze(0).float().div_(255.0)
        out[i] = to_channels(x, info, what)[0]
    return out


def _pickled(path: Path) -> GenbenchError:
    return GenbenchError(f"--images {path}: holds Python objects (pickle, refused: it could run code)")


def _read_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """A ``.npy`` header (shape, Fortran order, dtype), read from the stream without reading any data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version}")


def _read_rows(f: IO[bytes], size: int, path: Path, key: str, info: DataInfo, n: int) -> tuple[np.ndarray, str]:
    """The first ``n`` rows of the array in stream ``f`` (of ``size`` bytes uncompressed) and their layout,
    its header checked first: only the ``n`` rows are read, whatever the header declares (a few compressed
    bytes can declare gigabytes)."""
    shape, fortran, dtype = _read_header(f)
    if dtype.hasobject:
        raise _pickled(path)
    c, h, w = info.shape
    layouts: dict[tuple[int, ...], str] = {(c, h, w): "nchw", (h, w, c): "nhwc", (h, w, 3): "nhwc", (3, h, w): "nchw"}
    if c == 1:
        layouts[(h, w)] = "nhw"
    layout = layouts.get(tuple(shape[1:]))
    if len(shape) < 3 or layout is None:
        raise GenbenchError(
            f"--images {path}: array {key!r} of shape {shape}; expected (N, {c}, {h}, {w}), (N, {h}, {w}, {c})"
            + (f" or (N, {h}, {w})" if c == 1 else "")
            + f" for dataset {info.name!r}"
        )
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise GenbenchError(f"--images {path}: array of {dtype}; expected uint8 (0-255) or floats in [0, 1]")
    if shape[0] < n:
        raise GenbenchError(
            f"--images {path}: {shape[0]} images; the protocol compares {n} (--eval-samples): "
            f"pass --eval-samples {shape[0]} or more images"
        )
    if f.tell() + math.prod(shape) * dtype.itemsize != size:
        raise GenbenchError(f"--images {path}: array {key!r} is damaged (its header declares {shape}, {dtype})")
    if fortran:  # its first n images are not its first bytes
        raise GenbenchError(
            f"--images {path}: array {key!r} is stored in Fortran order; save np.ascontiguousarray(images) instead"
        )
    want = n * math.prod(shape[1:]) * dtype.itemsize
    data = bytearray()  # writable, so torch.from_numpy takes it as it is
    while len(data) < want:
        chunk = f.read(want - len(data))
        if not chunk:
            raise GenbenchError(f"--images {path}: array {key!r} is truncated (its header declares {shape})")
        data += chunk
    return np.frombuffer(data, dtype).reshape((n, *shape[1:])), layout


def _npz_rows(path: Path, info: DataInfo, n: int) -> tuple[np.ndarray, str]:
    """The first ``n`` images of the array genbench reads in the ``.npz`` (policy above), and their layout."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":  # a .npy named .npz, as np.load reads it: refused, after a look at its dtype
            f.seek(0)
            if _read_header(f)[2].hasobject:
                raise _pickled(path)
            raise GenbenchError(f"--images {path}: a .npy file, not an .npz; save the images with np.savez")
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}  # as np.load names them
        keys = list(members)
        key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
        if key is None:
            raise GenbenchError(
                f"--images {path}: holds arrays {choices(keys)}; genbench reads the only array, or one named "
                f"{', '.join(NPZ_KEYS)}"
            )
        with archive.open(members[key]) as f:
            return _read_rows(f, archive.getinfo(members[key]).file_size, path, key, info, n)


def read_npz(path: Path, info: DataInfo, n: int) -> ImageSamples:
    """The first ``n`` images of the array in an ``.npz`` (policy above), read without pickle, and no more
    of it than those images (its header is checked before any data is read)."""
    try:
        arr, layout = _npz_rows(path, info, n)
    except GenbenchError:
        raise
    except Exception as exc:
        raise GenbenchError(f"--images {path}: not a readable .npz ({type(exc).__name__})") from None
    if arr.dtype == np.uint8:
        x = torch.from_numpy(arr).float().div_(255.0)
    else:  # floating (checked in _read_rows)
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        try:  # held to the sample contract a model's samples are held to: finite, in [0, 1] (within its tolerance)
            check_values(x, info)
        except (ContractError, Diverged) as exc:
            raise GenbenchError(
                f"--images {path}: {exc}; a float array holds values in [0, 1] (or give uint8, 0-255)"
            ) from None
    x = x.unsqueeze(1) if layout == "nhw" else x.permute(0, 3, 1, 2) if layout == "nhwc" else x
    images = to_channels(x.contiguous(), info, f"--images {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ImageSamples(images, str(path), digest, 0, n)


def read_images(path: Path, info: DataInfo, n: int) -> ImageSamples:
    """``--images``: a folder of PNG/JPEG files or an ``.npz`` (see the module's policy)."""
    if info.kind != "image" or len(info.shape) != 3:
        raise GenbenchError(f"--images: dataset {info.name!r} holds {info.kind}, not images")
    if path.suffix.lower() == ".npz" and path.is_file():
        return read_npz(path, info, n)
    return read_folder(path, info, n)
