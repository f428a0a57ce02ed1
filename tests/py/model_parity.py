"""Reference outputs for the model parity tests: torchvision bodies (cut=-2: resnets,
convnext) and a head built exactly like fastai's create_head, with random weights AND
random normalisation statistics and layer scales, run in eval mode on a fixed input.
Writes each arch's weights as torch.save writes a state_dict (`<arch>.pth`, the format
torchvision serves), the head, the input and the outputs as safetensors."""
import sys
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file


class AdaptiveConcatPool2d(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, 1), nn.functional.adaptive_avg_pool2d(x, 1)], 1)


def fastai_bn1d(n):
    bn = nn.BatchNorm1d(n)
    bn.bias.data.fill_(1e-3)
    bn.weight.data.fill_(1.0)
    return bn


def create_head(nf, n_out, ps=0.5):
    """fastai create_head(nf, n_out, lin_ftrs=None, ps=0.5, concat_pool=True, first_bn=True)."""
    ftrs = [2 * nf, 512, n_out]
    ps = [ps / 2] * (len(ftrs) - 2) + [ps]
    layers = [AdaptiveConcatPool2d(), nn.Flatten()]
    for i, (ni, no) in enumerate(zip(ftrs[:-1], ftrs[1:])):
        layers += [fastai_bn1d(ni), nn.Dropout(ps[i]), nn.Linear(ni, no, bias=False)]
        if i < len(ftrs) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def randomise_bn(m, g):
    """Random BatchNorm statistics and affine parameters, LayerNorm affine parameters and
    ConvNeXt layer scales (torchvision's 1e-6 would hide every block), so that each
    parameter matters to the output."""
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            # Scales under 1 keep a resnet152's outputs near 1 (at 0.5..1.5 they reach 1e10).
            mod.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.2)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        elif isinstance(mod, nn.LayerNorm):
            n = mod.weight.numel()
            mod.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
        if hasattr(mod, "layer_scale"):
            mod.layer_scale.data.copy_(torch.rand(mod.layer_scale.shape, generator=g) * 0.5)


def state(m):
    return {k: v.contiguous() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}


def main(out, archs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=g)
    save_file({"x": x}, f"{out}/input.safetensors")
    for arch in archs:
        torch.manual_seed(1)
        m = getattr(torchvision.models, arch)(weights=None)
        with torch.no_grad():
            randomise_bn(m, g)
        m.eval()
        torch.save(m.state_dict(), f"{out}/{arch}.pth")
        body = nn.Sequential(*list(m.children())[:-2]).eval()
        with torch.no_grad():
            nf = body(x).shape[1]
        head = create_head(nf, 3)
        with torch.no_grad():
            randomise_bn(head, g)
        head.eval()
        save_file(state(head), f"{out}/{arch}_head.safetensors")
        with torch.no_grad():
            feats = body(x)
            save_file({"features": feats.contiguous(), "logits": head(feats).contiguous()}, f"{out}/{arch}_expected.safetensors")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
