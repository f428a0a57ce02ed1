"""Pillow reference for `scripts/bench pipeline`: decode + centre crop-resize to 224
(bilinear, antialiased) + u8->float + ImageNet normalisation, batches of 64, with N
worker threads decoding ahead of the main thread (as the runner's loader does).
`--draft` first asks Pillow for JPEG DCT scaling (`Image.draft`), which fastai does not
use, so that the runner's own DCT scaling is also compared with Pillow's.
    .venv/bin/python benches/pipeline.py [--draft] <image folder> 1 2
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
EXTS = {".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp"}


DRAFT = False


def load(path, size=224):
    im = Image.open(path)
    if DRAFT:  # the smallest scale whose both sides still cover `size`
        im.draft("RGB", (size, size))
    im = im.convert("RGB")
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) / 2, (h - s) / 2
    im = im.resize((size, size), Image.BILINEAR, box=(left, top, left + s, top + s))
    return np.asarray(im)


def epoch(files, pool, bs=64):
    it = pool.map(load, files)  # submits everything: workers run ahead of the consumer
    n = 0
    while n < len(files):
        batch = np.stack([next(it) for _ in range(min(bs, len(files) - n))])
        x = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        x = (x - MEAN) / STD
        n += x.shape[0]
    return n


def main():
    global DRAFT
    args = sys.argv[1:]
    DRAFT = args[0] == "--draft"
    args = args[1:] if DRAFT else args
    folder, threads = args[0], [int(a) for a in args[1:]]
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if os.path.splitext(f)[1].lower() in EXTS)
    for n in threads:
        with ThreadPoolExecutor(n) as pool:
            best = float("inf")
            for p in range(6):
                t = time.perf_counter()
                assert epoch(files, pool) == len(files)
                if p > 0:  # pass 0 warms the page cache
                    best = min(best, time.perf_counter() - t)
        print(f"threads={n} images_per_s={len(files) / best:.1f}")


if __name__ == "__main__":
    main()
