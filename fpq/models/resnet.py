"""CIFAR ResNets: ResNet-20 (He et al. 2016, option-A shortcuts) and ResNet-18/50 (3x3 stem, no max-pool)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from fpq.models import register_model
from fpq.models.base import CifarModel


def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample and zero-pad channels; parameter-free (keeps ResNet-20 at 0.27M)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class ProjectionShortcut(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(*conv_bn(cin, cout, 1, stride))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, shortcut=ProjectionShortcut):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        needs = stride != 1 or cin != planes
        self.shortcut = shortcut(cin, planes, stride) if needs else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, shortcut=ProjectionShortcut):
        super().__init__()
        cout = planes * self.expansion
        self.conv1, self.bn1 = conv_bn(cin, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = conv_bn(planes, cout, 1)
        needs = stride != 1 or cin != cout
        self.shortcut = shortcut(cin, cout, stride) if needs else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(CifarModel):
    def __init__(self, block, depths, widths, num_classes: int, shortcut=ProjectionShortcut):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, widths[0], 3)
        layers, cin = [], widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths)):
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(block(cin, width, stride, shortcut))
                cin = width * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model(label="ResNet-20", rank=4)
def resnet20(num_classes: int) -> ResNet:
    """He et al. 2016 CIFAR ResNet-20: 0.27M parameters at 10 classes."""
    return ResNet(BasicBlock, [3, 3, 3], [16, 32, 64], num_classes, shortcut=ZeroPadShortcut)


@register_model(label="ResNet-18", rank=0)
def resnet18(num_classes: int) -> ResNet:
    """ResNet-18 with a 3x3 stem and no max-pool: 11.17M parameters at 10 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512], num_classes)


@register_model(label="ResNet-50", rank=1)
def resnet50(num_classes: int) -> ResNet:
    """ResNet-50 with a 3x3 stem and no max-pool: 23.52M parameters at 10 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], num_classes)
