"""LeNet-5, Tiny-VGG, a 1-D CNN and a convolutional autoencoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convlab import nn, shapes

__all__ = ["MODELS", "autoencoder", "build_model", "cnn1d", "lenet5", "tinyvgg"]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return shapes.ntuple(size, 2, "input_size")


def lenet5(in_channels: int = 1, num_classes: int = 10, input_size=(28, 28)) -> nn.Sequential:
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, as the textbooks draw it today.

    conv 5x5 (6, padding 2) - ReLU - max-pool 2 - conv 5x5 (16) - ReLU - max-pool 2 -
    fc 120 - ReLU - fc 84 - ReLU - fc ``num_classes``. The padding keeps 28x28 digits at the
    32x32 geometry of the original.
    """
    h, w = _pair(input_size)
    h, w = (h // 2 - 4) // 2, (w // 2 - 4) // 2
    if h <= 0 or w <= 0:
        raise ValueError(f"lenet5 needs inputs of at least 12x12 pixels, got {input_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * h * w, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def tinyvgg(
    in_channels: int = 1, num_classes: int = 10, input_size=(28, 28), hidden: int = 10
) -> nn.Sequential:
    """Tiny-VGG (CNN Explainer): two blocks of conv-ReLU-conv-ReLU-max-pool, then a classifier.

    The 3x3 convolutions pad by 1, so each block halves the image: 28x28 becomes 7x7.
    """
    h, w = _pair(input_size)
    h, w = h // 4, w // 4
    if h <= 0 or w <= 0:
        raise ValueError(f"tinyvgg needs inputs of at least 4x4 pixels, got {input_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(hidden * h * w, num_classes),
    )


def cnn1d(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 40,
    hidden: int = 32,
) -> nn.Sequential:
    """A 1-D CNN for sequences such as MNIST-1D: three strided Conv1d layers and a linear one."""
    (length,) = shapes.ntuple(input_size, 1, "input_size")
    for _ in range(3):
        length = shapes.conv_output_size(length, 5, 2, 2)
    if length <= 0:
        raise ValueError(f"cnn1d needs sequences of at least 1 step, got {input_size}")
    return nn.Sequential(
        nn.Conv1d(in_channels, hidden, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv1d(hidden, hidden, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv1d(hidden, hidden, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(hidden * length, num_classes),
    )


def autoencoder(
    in_channels: int = 1, num_classes: int = 10, input_size=(28, 28), hidden: int = 16
) -> nn.Sequential:
    """Convolutions down (stride 2, twice), transposed convolutions back up, sigmoid output.

    28x28 -> 14x14 -> 7x7 and back; ``output_padding=1`` recovers the even sizes that a
    stride-2 convolution maps onto the same output (the 5x5 / 6x6 ambiguity).
    ``num_classes`` is accepted for a uniform signature and unused.
    """
    h, w = _pair(input_size)
    if h % 4 or w % 4:
        raise ValueError(f"autoencoder needs sides divisible by 4, got {input_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, 2 * hidden, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * hidden, hidden, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden, in_channels, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),
    )


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": lenet5,
    "tinyvgg": tinyvgg,
    "cnn1d": cnn1d,
    "autoencoder": autoencoder,
}


def build_model(name: str, **args) -> nn.Module:
    """Build a zoo model by name; unknown names get the list of known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**args)
