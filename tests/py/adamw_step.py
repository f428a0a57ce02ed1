"""Reference for the optimizer test: PyTorch's AdamW with fastai's hyper-parameters,
three steps on fixed gradients, with beta1 changed between steps as fit_one_cycle does."""
import sys
import torch
from safetensors.torch import save_file

g = torch.Generator().manual_seed(0)
p0 = torch.randn(4, 5, generator=g)
grads = [torch.randn(4, 5, generator=g) for _ in range(3)]
p = p0.clone().requires_grad_(True)
opt = torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
for i, (gr, beta1) in enumerate(zip(grads, [0.95, 0.9, 0.85])):
    opt.param_groups[0]["betas"] = (beta1, 0.99)
    opt.zero_grad()
    p.grad = gr.clone()
    opt.step()
save_file({"p0": p0, "g0": grads[0], "g1": grads[1], "g2": grads[2], "p3": p.detach().clone()}, sys.argv[1])
