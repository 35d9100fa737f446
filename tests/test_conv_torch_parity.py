"""Differential tests against PyTorch 2.13: convolution layers on 600 random configurations.

Each configuration (tests/conv_configs.py, fixed seed) builds the same layer in both libraries,
copies PyTorch's initial weights into convlab, and compares the output and the gradients of the
input, the weight and the bias, in float64 and in float32.
"""

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
from tests.conv_configs import draw_configs

torch = pytest.importorskip("torch", reason="PyTorch 2.13 not installed: pip install torch==2.13.0")

CONFIGS = draw_configs(600)
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}


def config_id(config):
    kind = "convT" if config["kind"] == "transpose" else "conv"
    return f"{kind}{config['n']}d-k{config['kernel']}-s{config['stride']}-g{config['groups']}"


def build(config, dtype):
    n = config["n"]
    if config["kind"] == "conv":
        args = dict(
            stride=config["stride"],
            padding=config["padding"],
            dilation=config["dilation"],
            groups=config["groups"],
            bias=config["bias"],
            padding_mode=config["padding_mode"],
        )
        ours = getattr(nn, f"Conv{n}d")(config["c_in"], config["c_out"], config["kernel"], **args)
        theirs = getattr(torch.nn, f"Conv{n}d")(
            config["c_in"], config["c_out"], config["kernel"], **args
        )
    else:
        args = dict(
            stride=config["stride"],
            padding=config["padding"],
            output_padding=config["output_padding"],
            groups=config["groups"],
            bias=config["bias"],
            dilation=config["dilation"],
        )
        ours = getattr(nn, f"ConvTranspose{n}d")(
            config["c_in"], config["c_out"], config["kernel"], **args
        )
        theirs = getattr(torch.nn, f"ConvTranspose{n}d")(
            config["c_in"], config["c_out"], config["kernel"], **args
        )
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours.to(dtype).load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_layer_matches_torch(config):
    rng = np.random.default_rng(hash(config_id(config)) % 2**32)
    for dtype in (np.float64, np.float32):
        ours, theirs = build(config, dtype)
        batch = config["batch"]
        shape = ((batch,) if batch else ()) + (config["c_in"], *config["spatial"])
        x = rng.standard_normal(shape).astype(dtype)
        tx = torch.tensor(x, requires_grad=True)
        cx = cl.tensor(x, requires_grad=True)
        if config["kind"] == "transpose" and config.get("output_size"):
            ty, cy = theirs(tx, output_size=config["output_size"]), ours(cx, config["output_size"])
        else:
            ty, cy = theirs(tx), ours(cx)
        assert cy.shape == tuple(ty.shape)
        assert cy.dtype == dtype
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), **tol)

        g = rng.standard_normal(ty.shape).astype(dtype)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), **tol)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **tol)
        if config["bias"]:
            np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), **tol)
