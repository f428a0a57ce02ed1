"""PyTorch eager reference for `scripts/bench step`: the same Siamese models, the same
optimizer (AdamW with fastai's betas/eps/wd, no decay on BatchNorm and bias), the same
batches, on the same number of CPU threads. Prints `case ms_per_step` lines."""
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from model_parity import create_head  # noqa: E402


class Siamese(nn.Module):
    def __init__(self, encoder, head, mode):
        super().__init__()
        self.encoder, self.head, self.mode = encoder, head, mode

    def forward(self, x1, x2):
        a, b = self.encoder(x1), self.encoder(x2)
        if self.mode == "concat":
            return self.head(torch.cat([a, b], 1))
        return self.head((a - b).abs()).squeeze(1)


def small_convnet():
    layers, c_in = [], 1
    for i, (c, k, pool) in enumerate(zip([64, 128, 128, 256], [10, 7, 4, 4], [True, True, True, False])):
        layers += [nn.Conv2d(c_in, c, k, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def optimizer(model):
    decay, no_decay = [], []
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            (no_decay if isinstance(mod, nn.modules.batchnorm._BatchNorm) or name == "bias" else decay).append(p)
    return torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-4, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01, foreach=False)


def time_case(name, model, loss_fn, bs, shape, steps):
    torch.manual_seed(0)
    opt = optimizer(model)
    model.train()
    times = []
    for i in range(steps + 2):
        x1, x2 = torch.randn(bs, *shape), torch.randn(bs, *shape)
        y = torch.randint(0, 2, (bs,))
        t = time.perf_counter()
        out = model(x1, x2)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    print(f"{name} {statistics.median(times) * 1000:.1f}", flush=True)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(threads)
    body = nn.Sequential(*list(torchvision.models.resnet34(weights=None).children())[:-2])
    model = Siamese(body, create_head(1024, 2), "concat")
    time_case("siamese_resnet34_224_bs16", model, nn.functional.cross_entropy, 16, (3, 224, 224), steps)
    model = Siamese(small_convnet(), nn.Linear(256, 1), "l1")
    bce = lambda out, y: nn.functional.binary_cross_entropy_with_logits(out, y.float())
    time_case("siamese_convnet_105_bs64", model, bce, 64, (1, 105, 105), steps)


if __name__ == "__main__":
    main()
