import re

import pytest
import torch

from fpq.models import MODEL_INFO, MODELS, count_parameters, create_model, model_factory, model_rank

PAPER_MODELS = ["resnet18", "resnet50", "mobilenetv1", "mobilenetv2"]  # the paper's row order


def test_registry_holds_the_paper_models_in_the_papers_order_and_resnet20():
    assert [m for m in sorted(MODELS, key=model_rank) if m in PAPER_MODELS] == PAPER_MODELS
    assert "resnet20" in MODELS and MODEL_INFO["resnet18"].label == "ResNet-18"
    with pytest.raises(KeyError, match="unknown model 'vgg'"):
        create_model("vgg", 10)


def documented_parameters(name: str) -> float:
    """Every factory's docstring states its size: '... 11.17M parameters at 10 classes'."""
    found = re.search(r"([0-9.]+)M parameters at 10 classes", model_factory(name).__doc__ or "")
    assert found, f"{name}: the docstring does not state its parameter count"
    return float(found.group(1)) * 1e6


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_counts_are_what_each_docstring_says(name):
    assert count_parameters(create_model(name, 10)) == pytest.approx(documented_parameters(name), rel=0.01)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("classes", [10, 100])
def test_forward_shape(name, classes):
    model = create_model(name, classes).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, classes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_conv_layers_are_listed_in_forward_order(name):
    model = create_model(name, 10).eval()
    convs = model.conv_layers()
    ran = []
    handles = [c.register_forward_hook(lambda m, i, o: ran.append(m)) for c in convs]
    model(torch.randn(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert [id(m) for m in ran] == [id(m) for m in convs]
    assert len(convs) == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert model.classifier() is model.fc
