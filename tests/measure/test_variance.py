import torch

from fpq.measure.variance import output_variance
from fpq.models import create_model


def test_variance_grows_with_noise_and_mode_is_restored():
    torch.manual_seed(0)
    model = create_model("resnet20", 10).train()
    images = torch.randn(20, 3, 32, 32)
    small = output_variance(model, images, sigma=0.01, samples=4)
    large = output_variance(model, images, sigma=0.5, samples=4)
    assert model.training
    assert 0 < small["logit_variance"] < large["logit_variance"]
    assert small["images"] == 20 and small["samples"] == 4
    assert output_variance(model, images, sigma=0.5, samples=4) == large  # seeded
