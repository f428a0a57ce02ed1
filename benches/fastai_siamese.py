"""fastai's Siamese tutorial as experiments/pets_siamese.rhai runs it, for `scripts/bench fastai`.

Same data (the image folder given), same semantics: files sorted, RandomSplitter(0.2, seed),
one pair per file drawn within its split (classes present there, never the file itself),
the training pairs oversampled to balance the labels, Resize(size) crop (random position on
train, centre on valid) applied alike to both photos, ImageNet normalisation, bs 64,
resnet34 cut -2 body + create_head(512 * 2, 2, ps=0.5), frozen, lr_find, fit_one_cycle.
Prints one JSON line of timings and the accuracy last.
"""
import argparse
import json
import re
import sys
import time

start = time.perf_counter()
from collections import defaultdict  # noqa: E402
import random  # noqa: E402

import torch  # noqa: E402
from fastai.vision.all import (  # noqa: E402
    Callback, CrossEntropyLossFlat, IntToFloatTensor, Learner, Normalize, PILImage, RandomSplitter, Resize,
    ToTensor, TfmdLists, Transform, accuracy, create_body, create_head, fastuple, get_image_files,
    imagenet_stats, nn, params, set_seed,
)
from torchvision.models import resnet34  # noqa: E402

imported = time.perf_counter()

p = argparse.ArgumentParser()
p.add_argument("images")
p.add_argument("--seed", type=int, default=42)
p.add_argument("--size", type=int, default=224)
p.add_argument("--bs", type=int, default=64)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--lr-find-iters", type=int, default=100)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--weights", default="", help="torchvision's resnet34 .pth; empty: random init")
a = p.parse_args()

torch.set_num_threads(a.threads)
set_seed(a.seed)
files = sorted(get_image_files(a.images))
label_of = [re.match(r"^(.*)_\d+\.jpg$", f.name).group(1) for f in files]
train_idx, valid_idx = RandomSplitter(valid_pct=0.2, seed=a.seed)(files)
rng = random.Random(a.seed)


def draw_pairs(idxs):
    """One (file, partner, same) per file of the split; partners from the same split."""
    by_class = defaultdict(list)
    for i in idxs:
        by_class[label_of[i]].append(i)
    rows = []
    for i in idxs:
        c = label_of[i]
        mates = [j for j in by_class[c] if j != i]
        others = [k for k in by_class if k != c]
        same = rng.random() < 0.5
        if same and not mates:
            same = False
        if not same and not others:
            same = True
        j = rng.choice(mates) if same else rng.choice(by_class[rng.choice(others)])
        rows.append((i, j, same))
    return rows


def oversample(rows):
    """Resamples the minority label's rows (with replacement) up to the majority's count."""
    groups = defaultdict(list)
    for r in rows:
        groups[r[2]].append(r)
    most = max(len(g) for g in groups.values())
    out = list(rows)
    for g in groups.values():
        out += [rng.choice(g) for _ in range(most - len(g))]
    return out


train = oversample(draw_pairs(train_idx))
valid = draw_pairs(valid_idx)
rows = train + valid


class SiameseImage(fastuple):
    pass


class SiameseTransform(Transform):
    """Row number -> (photo, partner, same), as the tutorial's transform returns it."""

    def encodes(self, k: int):
        i, j, same = rows[k]
        return SiameseImage(PILImage.create(files[i]), PILImage.create(files[j]), same)


splits = [list(range(len(train))), list(range(len(train), len(rows)))]
tls = TfmdLists(list(range(len(rows))), SiameseTransform(), splits=splits)
dls = tls.dataloaders(
    bs=a.bs, num_workers=a.threads, after_item=[Resize(a.size), ToTensor],
    after_batch=[IntToFloatTensor, Normalize.from_stats(*imagenet_stats)],
)


class SiameseModel(nn.Module):
    def __init__(self, encoder, head):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x1, x2):
        return self.head(torch.cat([self.encoder(x1), self.encoder(x2)], dim=1))


arch = resnet34(weights=None)
if a.weights:
    arch.load_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True))
encoder = create_body(arch, cut=-2)
head = create_head(512 * 2, 2, ps=0.5)
model = SiameseModel(encoder, head)


def siamese_splitter(m):
    return [params(m.encoder), params(m.head)]


def loss_func(out, targ):
    return CrossEntropyLossFlat()(out, targ.long())


class EpochTimes(Callback):
    """Seconds of each fit epoch (training and validation), as the runner's log has them."""

    order = 100

    def before_fit(self):
        self.seconds = []

    def before_epoch(self):
        self.t = time.perf_counter()

    def after_epoch(self):
        self.seconds.append(round(time.perf_counter() - self.t, 2))


times = EpochTimes()
learn = Learner(dls, model, loss_func=loss_func, splitter=siamese_splitter, metrics=accuracy, cbs=[times])
learn.freeze()
ready = time.perf_counter()
with learn.no_bar():
    if a.lr_find_iters > 0:
        sug = learn.lr_find(num_it=a.lr_find_iters, show_plot=False)
        print(f"lr_find: valley {sug.valley:.3g}", file=sys.stderr)
    found = time.perf_counter()
    learn.fit_one_cycle(a.epochs, a.lr)
    fitted = time.perf_counter()
    epoch_s = list(times.seconds)  # validate() below runs the fit events again
    _, acc = learn.validate()
done = time.perf_counter()
print(json.dumps({
    "import_s": round(imported - start, 2),
    "setup_s": round(ready - imported, 2),
    "lr_find_s": round(found - ready, 2),
    "fit_s": round(fitted - found, 2),
    "epoch_s": epoch_s,
    "validate_s": round(done - fitted, 2),
    "train_pairs": len(train), "valid_pairs": len(valid),
}))
print(f"valid_accuracy: {float(acc):.4f}")
