import pytest
import torch

from fpq.models import MODELS, count_parameters, create_model

# Parameter counts at 10 classes (documented in each model's docstring).
EXPECTED = {"resnet20": 0.27e6, "resnet18": 11.17e6, "resnet50": 23.52e6, "mobilenetv1": 3.22e6,
            "mobilenetv2": 2.30e6}


def test_registry_holds_the_paper_models_and_resnet20():
    assert set(MODELS) == set(EXPECTED)
    with pytest.raises(KeyError, match="unknown model 'vgg'"):
        create_model("vgg", 10)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts(name):
    assert count_parameters(create_model(name, 10)) == pytest.approx(EXPECTED[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("classes", [10, 100])
def test_forward_shape(name, classes):
    model = create_model(name, classes).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, classes)


@pytest.mark.parametrize("name", sorted(EXPECTED))
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
