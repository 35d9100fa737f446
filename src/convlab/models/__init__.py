"""The model zoo: small CNNs built from convlab.nn layers, each rebuilt from its name and args.

``build_model(name, **args)`` returns a module; the same ``(name, args)`` saved beside the
weights is all a run directory needs to rebuild it.
"""

from __future__ import annotations

from convlab.models.zoo import MODELS, autoencoder, build_model, cnn1d, lenet5, tinyvgg

__all__ = ["MODELS", "autoencoder", "build_model", "cnn1d", "lenet5", "tinyvgg"]
