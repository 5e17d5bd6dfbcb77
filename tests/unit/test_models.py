"""The reference CNN: parameter count, shapes, dropout."""

from __future__ import annotations

import pytest
import torch

from spokenword.models import SpectrogramCNN


def test_reference_cnn_has_84682_parameters():
    assert sum(p.numel() for p in SpectrogramCNN().parameters()) == 84_682
    assert sum(p.numel() for p in SpectrogramCNN(dropout=0.5).parameters()) == 84_682  # dropout adds none


def test_output_and_feature_shapes():
    model = SpectrogramCNN().eval()
    x = torch.randn(3, 1, 64, 64)
    assert model.forward_features(x).shape == (3, 1600)
    assert model(x).shape == (3, 10)
    assert SpectrogramCNN(num_classes=35, input_size=(40, 101))(torch.randn(2, 1, 40, 101)).shape == (2, 35)


def test_blocks_follow_the_reference():
    convs = [m for m in SpectrogramCNN().modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 16, (5, 5), (2, 2)), (16, 32, (5, 5), (2, 2)), (32, 64, (3, 3), (2, 2)), (64, 64, (3, 3), (2, 2))]
    assert SpectrogramCNN().head.in_features == 1600


@pytest.mark.parametrize("batch_norm", [False, True])
def test_pooling_before_relu_is_the_references_relu_then_pooling(batch_norm):
    torch.manual_seed(0)
    model = SpectrogramCNN(batch_norm=batch_norm).eval()
    x = torch.randn(4, 1, 64, 64)
    reference = x
    for layer in model.features:  # the reference's order: ReLU, then pooling
        if isinstance(layer, torch.nn.MaxPool2d):
            continue
        reference = layer(reference)
        if isinstance(layer, torch.nn.ReLU):
            reference = torch.nn.functional.max_pool2d(reference, 2)
    assert torch.equal(model.forward_features(x), reference.flatten(1))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_dropout_is_configurable_and_only_active_in_training(p):
    torch.manual_seed(0)
    model = SpectrogramCNN(dropout=p)
    assert model.dropout.p == p
    x = torch.randn(4, 1, 64, 64)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    same = torch.allclose(model(x), model(x))
    assert same == (p == 0.0)


def test_batch_norm_is_optional_and_off_in_the_reference():
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in SpectrogramCNN().modules())
    model = SpectrogramCNN(batch_norm=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [n.num_features for n in norms] == [16, 32, 64, 64]
    assert sum(p.numel() for p in model.parameters()) == 84_682 + 2 * (16 + 32 + 64 + 64)
    x = torch.randn(4, 1, 64, 64)
    assert model.eval()(x).shape == (4, 10)


def test_channels_set_the_widths_and_the_head():
    model = SpectrogramCNN(batch_norm=True, channels=(16, 32, 96, 96))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 96, 96]
    assert [c.in_channels for c in convs] == [1, 16, 32, 96]
    assert model.head.in_features == 96 * 5 * 5
    expected = (16 * 25 + 16) + (32 * 16 * 25 + 32) + (96 * 32 * 9 + 96) + (96 * 96 * 9 + 96)
    expected += 2 * (16 + 32 + 96 + 96) + 96 * 25 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.eval()(torch.randn(3, 1, 64, 64)).shape == (3, 10)
    with pytest.raises(ValueError, match="four positive widths"):
        SpectrogramCNN(channels=(16, 32, 64))
    with pytest.raises(ValueError, match="four positive widths"):
        SpectrogramCNN(channels=(16, 0, 64, 64))


@pytest.mark.parametrize("kernel, padding", [(3, 2), ((3, 5), (2, 2)), (5, 2), (3, "same")])
def test_growing_convolution_trains_the_same_function_as_one_convolution(kernel, padding):
    """GrowingConv2d pads the excess explicitly in training only: its output and gradients are nn.Conv2d's."""
    from spokenword.models.cnn import GrowingConv2d

    torch.manual_seed(0)
    growing = GrowingConv2d(3, 4, kernel, padding=padding).train()
    plain = torch.nn.Conv2d(3, 4, kernel, padding=padding)
    plain.load_state_dict(growing.state_dict())  # same parameters, same state dict keys
    x = torch.randn(2, 3, 9, 10)
    out, expected = growing(x), plain(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(growing.weight.grad, plain.weight.grad)
    torch.testing.assert_close(growing.bias.grad, plain.bias.grad)
    torch.testing.assert_close(growing.eval()(x), plain(x), rtol=0, atol=0)  # eval: the one convolution


def test_growing_convolution_exports_as_one_convolution():
    """In eval mode (every export) there is no separate pad: the ONNX graph is one Conv padded by 2."""
    pytest.importorskip("onnx")
    model = SpectrogramCNN(batch_norm=True).eval()
    with torch.no_grad():  # as spokenword.inference.export traces it
        program = torch.onnx.export(model, (torch.randn(1, 1, 64, 64),), dynamo=True, optimize=False, verbose=False)
    ops = [node.op_type for node in program.model_proto.graph.node]
    assert "Pad" not in ops and ops.count("Conv") == 4
