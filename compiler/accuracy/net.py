"""The small CNN, trained here with PyTorch (CPU) on the digits' training split.

Topology (8x8 grey image in, ten logits out)::

    conv1  Conv 1->16, 3x3, pad 1   + Relu
    conv2  Conv 16->32, 3x3, pad 1  + Relu, MaxPool 2x2 -> 32x4x4, Flatten -> 512
    fc1    Gemm 512->64             + Relu
    fc2    Gemm 64->10              (logits)

Training is deterministic: the seed fixes the weight initialisation and the
mini-batch order, PyTorch runs with deterministic algorithms on one thread, so a
seed gives the same weights on every run (a test). torch is imported here only.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

# (name, kind, in channels/features, out channels/features); the ONNX node names too
LAYERS: tuple[tuple[str, str, int, int], ...] = (
    ("conv1", "Conv", 1, 16),
    ("conv2", "Conv", 16, 32),
    ("fc1", "Gemm", 32 * 4 * 4, 64),
    ("fc2", "Gemm", 64, 10),
)
LAYER_NAMES: tuple[str, ...] = tuple(name for name, *_ in LAYERS)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4


DEFAULT_TRAINING = TrainSettings()  # what the cached models, the docs and the tests use


def _module():
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(32 * 4 * 4, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.conv1(x))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc2(torch.relu(self.fc1(x)))

    return DigitsCNN


@contextmanager
def _deterministic_torch():
    import torch

    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield torch
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def train(
    x: np.ndarray, y: np.ndarray, seed: int, settings: TrainSettings = DEFAULT_TRAINING
) -> dict[str, np.ndarray]:
    """Train the CNN on (x, y); return its weights as ``{"conv1.weight": array, ...}``."""
    with _deterministic_torch() as torch:
        torch.manual_seed(seed)
        model = _module()()
        optimiser = torch.optim.Adam(
            model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs)
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
        order = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(settings.epochs):
            permutation = torch.randperm(len(labels), generator=order)
            for start in range(0, len(labels), settings.batch_size):
                batch = permutation[start : start + settings.batch_size]
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
                loss.backward()
                optimiser.step()
            schedule.step()
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def torch_logits(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The logits PyTorch computes for ``x`` with ``weights`` (to check the ONNX export)."""
    with _deterministic_torch() as torch:
        model = _module()()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
