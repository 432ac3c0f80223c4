"""The handwritten-digits data that ships inside scikit-learn, split by seed.

``sklearn.datasets.load_digits`` reads a file inside the scikit-learn package
(1,797 images of 8x8 pixels, values 0-16, ten classes): nothing is downloaded.
Pixels are scaled to [0, 1] (so every tensor a layer reads is non-negative).

A seed fixes a three-way stratified split: ``test`` (25 %, the held-out split every
reported accuracy is measured on), ``val`` (15 %, what the mixed-precision search
selects on, so its choice is not tuned on the test split) and ``train`` (the rest,
the only images the network and the quantisation calibration ever see).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TEST_FRACTION = 0.25
VAL_FRACTION = 0.15


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray  # float32 (N, 1, 8, 8) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r} (train, val or test)")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    return x, digits.target.astype(np.int64)


@lru_cache(maxsize=16)
def split(seed: int) -> Split:
    """The train/val/test split for ``seed`` (stratified by class, the same on every run)."""
    from sklearn.model_selection import train_test_split

    x, y = _digits()
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    train, val = train_test_split(
        rest,
        test_size=VAL_FRACTION / (1.0 - TEST_FRACTION),
        random_state=seed,
        stratify=y[rest],
    )
    return Split(x[train], y[train], x[val], y[val], x[test], y[test])


def calibration_set(seed: int, size: int) -> np.ndarray:
    """``size`` training images chosen by ``seed``: what activation ranges are calibrated on."""
    x_train, _ = split(seed).part("train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x_train), size=min(size, len(x_train)), replace=False)
    return x_train[np.sort(pick)]
