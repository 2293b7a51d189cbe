"""CIFAR MobileNets: V1 (depthwise-separable stack) and V2 (inverted residuals), 3x3 stride-1 stem."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from fpq.models import register_model
from fpq.models.base import CifarModel
from fpq.models.resnet import conv_bn


class SeparableBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2, self.bn2 = conv_bn(cin, cout, 1)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class MobileNetV1(CifarModel):
    # (out_channels, stride); the CIFAR variant keeps the 32x32 input at stride 1 in the stem.
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, 32, 3)
        blocks, cin = [], 32
        for cout, stride in self.plan:
            blocks.append(SeparableBlock(cin, cout, stride))
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.stride = stride
        self.conv1, self.bn1 = conv_bn(cin, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3, self.bn3 = conv_bn(hidden, cout, 1)
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(*conv_bn(cin, cout, 1))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu6(self.bn1(self.conv1(x)))
        out = F.relu6(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))  # linear bottleneck
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(CifarModel):
    # (expansion, out_channels, blocks, stride); strides 1 in the first stages for 32x32 inputs.
    plan = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, 32, 3)
        blocks, cin = [], 32
        for expansion, cout, count, stride in self.plan:
            for i in range(count):
                blocks.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.conv2, self.bn2 = conv_bn(cin, 1280, 1)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        out = F.relu6(self.bn1(self.conv1(x)))
        out = F.relu6(self.bn2(self.conv2(self.layers(out))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model(label="MobileNetV1", rank=2)
def mobilenetv1(num_classes: int) -> MobileNetV1:
    """MobileNetV1, CIFAR variant: 3.22M parameters at 10 classes."""
    return MobileNetV1(num_classes)


@register_model(label="MobileNetV2", rank=3)
def mobilenetv2(num_classes: int) -> MobileNetV2:
    """MobileNetV2, CIFAR variant: 2.30M parameters at 10 classes."""
    return MobileNetV2(num_classes)
