"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision.

Files are looked for under ``--data-dir`` (torchvision's own layout) and
downloaded when allowed and online. Offline and missing, the error says which
dataset, where it looked, and how to supply it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from genbench.datasets.base import Dataset, LoadOptions, Split, shuffled
from genbench.errors import GenbenchError


class TorchvisionDataset(Dataset):
    """A torchvision classification dataset held in memory as float32 in [0, 1]."""

    tv_class: ClassVar[str]
    folder: ClassVar[str]
    layout: ClassVar[str] = ""  # the files torchvision looks for under --data-dir (README "Datasets")

    def _open(self, options: LoadOptions, train: bool) -> Any:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        root = options.data_dir
        try:
            return cls(str(root), train=train, download=False)
        except RuntimeError:
            if not options.download:
                raise GenbenchError(
                    f"dataset {self.name!r}: not found under {root}/{self.folder} and downloads are off; "
                    f"pass --data-dir to a folder holding torchvision's {self.tv_class} files ({self.layout})"
                ) from None
        try:
            return cls(str(root), train=train, download=True)
        except Exception as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise GenbenchError(
                f"dataset {self.name!r}: not found under {root}/{self.folder} and the download failed "
                f"({reason}); run once with internet or pass --data-dir to a folder holding torchvision's "
                f"{self.tv_class} files (or use the packaged 'mnist5k' dataset)"
            ) from None

    def load(self, options: LoadOptions) -> dict[str, Split]:
        out = {}
        for split, train in (("train", True), ("test", False)):
            ds = self._open(options, train)
            data = torch.as_tensor(np.asarray(ds.data))
            # (N, H, W) greyscale or (N, H, W, C) colour -> (N, C, H, W)
            data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
            x = data.float().div_(255.0).contiguous()
            y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
            out[split] = shuffled(x, y, seed=0)
        return out


class MNIST(TorchvisionDataset):
    name = "mnist"
    description = "MNIST 60k/10k through torchvision (downloads when online; --data-dir for a local copy)"
    shape = (1, 28, 28)
    num_classes = 10
    tv_class = "MNIST"
    folder = "MNIST"
    layout = "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, uncompressed"


class FashionMNIST(TorchvisionDataset):
    name = "fashion-mnist"
    description = "Fashion-MNIST 60k/10k through torchvision (downloads when online)"
    shape = (1, 28, 28)
    num_classes = 10
    tv_class = "FashionMNIST"
    folder = "FashionMNIST"
    layout = "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, uncompressed"


class CIFAR10(TorchvisionDataset):
    name = "cifar10"
    description = "CIFAR-10 50k/10k 32x32 RGB through torchvision (downloads when online)"
    shape = (3, 32, 32)
    num_classes = 10
    tv_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    layout = "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"
