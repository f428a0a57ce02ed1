//! Training-time augmentation, in the worker threads: horizontal flip, then one resample
//! that combines every geometric change (rotate, shear, scale, translate: the distortions
//! Omniglot Siamese nets train with; fastai's zoom, perspective warp and random-resized
//! crop) with the resize from the item size to the final size (fastai's presizing: the item
//! is loaded larger, and the crop, the warp and the resize are one bilinear pass, so the
//! image is interpolated once and the warp's corners reach real pixels of the margin before
//! they reach the padding), the border filled by `pad_mode` (fastai's default is
//! reflection; `border` suits white-background drawings), then lighting (linear
//! brightness/contrast, or fastai's in logit space). Every parameter comes from the
//! caller's generator, which is derived from (seed, epoch, item), so results never depend
//! on the thread.
use super::image::{reflect, PadMode};
use super::pixels::Pixels;
use rand::Rng;

crate::options! {
    /// The random changes each training image gets: an affine warp drawn as U(-max, max) per
    /// parameter (zoom as 1 +- scale), brightness `v + b * 255` and contrast around mid-grey
    /// `(v - 128) * c + 128`, each applied with its probability; and fastai's `aug_transforms`
    /// pieces, each with its own coin: zoom U(min_zoom, max_zoom) about a random point,
    /// perspective warp, lighting in logit space, and a random square crop of min_scale..1
    /// of the item's area.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Augment {
        /// padding for `pad` and the affine warp: reflection, zeros or border
        opt pad_mode: PadMode = PadMode::Reflection,
        /// random horizontal flips on training
        opt flip: bool = false,
        /// random rotation up to this many degrees
        opt rotate: f64 = 0.0,
        /// random shear up to this fraction
        opt shear: f64 = 0.0,
        /// random zoom up to this fraction
        opt scale: f64 = 0.0,
        /// random shift up to this fraction of the side
        opt translate: f64 = 0.0,
        /// random brightness change up to this fraction
        opt brightness: f64 = 0.0,
        /// random contrast change up to this fraction
        opt contrast: f64 = 0.0,
        /// probability of the affine warp per image (and, separately, of zoom and max_warp)
        opt p_affine: f64 = 0.75,
        /// probability of the lighting change per image (and, separately, of each max_lighting change)
        opt p_lighting: f64 = 0.75,
        /// fastai's Zoom: the smallest zoom factor (1: none)
        opt min_zoom: f64 = 1.0,
        /// fastai's Zoom: the largest zoom factor, drawn uniformly, about a random point
        opt max_zoom: f64 = 1.0,
        /// fastai's Warp: perspective warp moving the corners up to this fraction of the half side
        opt max_warp: f64 = 0.0,
        /// fastai's Brightness and Contrast in logit space, up to this much
        opt max_lighting: f64 = 0.0,
        /// random square crop of this share of the item's area up to all of it (fastai's RandomResizedCrop min_scale)
        opt min_scale: f64 = 1.0,
    }
}

crate::options! {
    /// fastai's `aug_transforms` preset, with fastai's defaults: flip, rotate, zoom, warp and
    /// lighting, turned into the loader options (`Augment` and `size`) that do the same.
    #[derive(Clone, Debug, PartialEq)]
    pub struct AugTransforms {
        /// the final image side (the loaders' size); with the loaders' item_size larger, fastai's presizing
        opt size: Option<u32> = None,
        /// multiplies max_rotate, max_lighting and max_warp
        opt mult: f64 = 1.0,
        /// random horizontal flips
        opt do_flip: bool = true,
        /// random rotation up to this many degrees
        opt max_rotate: f64 = 10.0,
        /// the smallest zoom factor
        opt min_zoom: f64 = 1.0,
        /// the largest zoom factor
        opt max_zoom: f64 = 1.1,
        /// brightness and contrast change (logit space) up to this much
        opt max_lighting: f64 = 0.2,
        /// perspective warp up to this fraction
        opt max_warp: f64 = 0.2,
        /// probability of each of rotate, zoom and warp
        opt p_affine: f64 = 0.75,
        /// probability of each of brightness and contrast
        opt p_lighting: f64 = 0.75,
        /// how the warp fills pixels from outside: reflection, zeros or border
        opt pad_mode: PadMode = PadMode::Reflection,
        /// random square crop of at least this share of the item's area (fastai's book: 0.75 with presizing)
        opt min_scale: f64 = 1.0,
    }
}

impl AugTransforms {
    /// The augmentation these settings make.
    pub fn augment(&self) -> Augment {
        Augment {
            pad_mode: self.pad_mode,
            flip: self.do_flip,
            rotate: self.max_rotate * self.mult,
            p_affine: self.p_affine,
            p_lighting: self.p_lighting,
            min_zoom: self.min_zoom,
            max_zoom: self.max_zoom,
            max_warp: self.max_warp * self.mult,
            max_lighting: self.max_lighting * self.mult,
            min_scale: self.min_scale,
            ..Augment::default()
        }
    }

    /// As loader options, key by key (`size` only when given): what a script passes to
    /// `image_loaders` and sees when it prints them.
    pub fn loader_options(&self) -> Vec<(&'static str, crate::opts::Value)> {
        use crate::opts::{Choice, Value};
        let a = self.augment();
        let mut out = vec![
            ("flip", Value::Bool(a.flip)),
            ("rotate", Value::Float(a.rotate)),
            ("min_zoom", Value::Float(a.min_zoom)),
            ("max_zoom", Value::Float(a.max_zoom)),
            ("max_warp", Value::Float(a.max_warp)),
            ("max_lighting", Value::Float(a.max_lighting)),
            ("p_affine", Value::Float(a.p_affine)),
            ("p_lighting", Value::Float(a.p_lighting)),
            ("pad_mode", Value::Str(a.pad_mode.name().to_string())),
            ("min_scale", Value::Float(a.min_scale)),
        ];
        if let Some(size) = self.size {
            out.insert(0, ("size", Value::Int(size as i64)));
        }
        out
    }
}

fn sym(rng: &mut impl Rng, max: f64) -> f64 {
    // Always consumes one number, so enabling one augmentation never shifts another's draws.
    let u: f64 = rng.gen();
    (2.0 * u - 1.0) * max
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    lo + rng.gen::<f64>() * (hi - lo)
}

/// fastai's `logit` with its clamp.
fn logit(x: f64) -> f64 {
    let x = x.clamp(1e-7, 1.0 - 1e-7);
    (x / (1.0 - x)).ln()
}

/// Where each output pixel samples the source. In output pixels about the output's
/// centre: the shift, then the inverse affine; normalised to [-1, 1] (corners aligned, as
/// fastai's grids): fastai's zoom, then its warp; last, the crop window in source pixels.
#[derive(Clone, Debug, PartialEq)]
struct Geometry {
    inv: [f64; 4],
    shift: (f64, f64),
    /// fastai's zoom matrix: coordinates times `s` plus `c`.
    zoom: Option<(f64, (f64, f64))>,
    /// A homography (8 coefficients, the ninth is 1).
    warp: Option<[f64; 8]>,
    /// Centre and half sides of the window in the source.
    window: (f64, f64, f64, f64),
}

impl Geometry {
    /// The whole of a `w` x `h` source, unchanged.
    fn whole(w: u32, h: u32) -> Geometry {
        let (hx, hy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        Geometry { inv: [1.0, 0.0, 0.0, 1.0], shift: (0.0, 0.0), zoom: None, warp: None, window: (hx, hy, hx, hy) }
    }

    /// Where output pixel (x, y) of a `size` image samples, relative to the window's
    /// centre, in output pixels (before the window's scale).
    fn offset(&self, x: f64, y: f64, size: u32) -> (f64, f64) {
        let half = ((size as f64 - 1.0) / 2.0).max(0.5);
        let (dx, dy) = (x - (size as f64 - 1.0) / 2.0 - self.shift.0, y - (size as f64 - 1.0) / 2.0 - self.shift.1);
        let (mut ax, mut ay) = (self.inv[0] * dx + self.inv[1] * dy, self.inv[2] * dx + self.inv[3] * dy);
        if self.zoom.is_some() || self.warp.is_some() {
            let (mut u, mut v) = (ax / half, ay / half);
            if let Some((s, c)) = self.zoom {
                (u, v) = (s * u + c.0, s * v + c.1);
            }
            if let Some(h) = self.warp {
                let d = h[6] * u + h[7] * v + 1.0;
                if d != 0.0 {
                    (u, v) = ((h[0] * u + h[1] * v + h[2]) / d, (h[3] * u + h[4] * v + h[5]) / d);
                }
            }
            (ax, ay) = (u * half, v * half);
        }
        (ax, ay)
    }

    /// The window's half sides per output half side: exactly 1 when nothing is resized, so
    /// an unresized affine samples where it always did.
    fn scale(&self, size: u32) -> (f64, f64) {
        let half = ((size as f64 - 1.0) / 2.0).max(0.5);
        if size == 1 {
            (0.0, 0.0)
        } else {
            (self.window.2 / half, self.window.3 / half)
        }
    }

    /// The source position output pixel (x, y) of a `size` image samples.
    fn source(&self, x: f64, y: f64, size: u32) -> (f64, f64) {
        let ((ax, ay), (kx, ky)) = (self.offset(x, y, size), self.scale(size));
        (self.window.0 + kx * ax, self.window.1 + ky * ay)
    }

    /// Places a window of half side `half_side` in a `w` x `h` source at fractions `at`
    /// of the room there is for the whole sampled area (the output's corners after the
    /// affine, zoom and warp) inside the source; centred where that area does not fit.
    fn place_window(&mut self, half_side: f64, w: u32, h: u32, size: u32, at: (f64, f64)) {
        self.window = (0.0, 0.0, half_side, half_side);
        let (kx, ky) = self.scale(size);
        let last = (size as f64 - 1.0).max(0.0);
        let corners = [(0.0, 0.0), (last, 0.0), (0.0, last), (last, last)].map(|(x, y)| self.offset(x, y, size));
        let place = |k: f64, pick: fn(&(f64, f64)) -> f64, extent: u32, frac: f64| {
            let lo = corners.iter().map(|c| k * pick(c)).fold(f64::INFINITY, f64::min);
            let hi = corners.iter().map(|c| k * pick(c)).fold(f64::NEG_INFINITY, f64::max);
            let (first, last) = (-lo, extent as f64 - 1.0 - hi);
            if first <= last {
                first + frac * (last - first)
            } else {
                (extent as f64 - 1.0) / 2.0 - (lo + hi) / 2.0
            }
        };
        self.window.0 = place(kx, |c| c.0, w, at.0);
        self.window.1 = place(ky, |c| c.1, h, at.1);
    }
}

/// The homography taking `from[i]` to `to[i]` (four points), fastai's `find_coeffs`.
fn homography(from: [(f64, f64); 4], to: [(f64, f64); 4]) -> Option<[f64; 8]> {
    let mut a = [[0.0f64; 9]; 8];
    for (i, (&(x, y), &(u, v))) in from.iter().zip(&to).enumerate() {
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the 8x8 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                for (x, p) in r[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut h = [0.0; 8];
    for (i, v) in h.iter_mut().enumerate() {
        *v = a[i][8] / a[i][i];
    }
    Some(h)
}

/// fastai's Warp: the corners move by (x_t, y_t) in opposite senses, the grid is the
/// homography from the moved corners to the square's.
fn warp_of(x_t: f64, y_t: f64) -> Option<[f64; 8]> {
    let square = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
    let moved = [(-1.0 - y_t, -1.0 - x_t), (-1.0 + y_t, 1.0 + x_t), (1.0 + y_t, -1.0 + x_t), (1.0 - y_t, 1.0 - x_t)];
    homography(moved, square)
}

impl Augment {
    fn has_affine(&self) -> bool {
        self.rotate != 0.0 || self.shear != 0.0 || self.scale != 0.0 || self.translate != 0.0
    }

    fn has_lighting(&self) -> bool {
        self.brightness != 0.0 || self.contrast != 0.0
    }

    fn has_zoom(&self) -> bool {
        self.min_zoom != 1.0 || self.max_zoom != 1.0
    }

    pub fn is_identity(&self) -> bool {
        !self.flip
            && !self.has_affine()
            && !self.has_lighting()
            && !self.has_zoom()
            && self.max_warp == 0.0
            && self.max_lighting == 0.0
            && self.min_scale >= 1.0
    }

    /// Errors for settings no draw can honour.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.min_zoom > 0.0 && self.max_zoom >= self.min_zoom) {
            anyhow::bail!("zoom must satisfy 0 < min_zoom <= max_zoom, got min_zoom {} and max_zoom {}", self.min_zoom, self.max_zoom);
        }
        if !(self.min_scale > 0.0 && self.min_scale <= 1.0) {
            anyhow::bail!("min_scale must be in (0, 1], got {}", self.min_scale);
        }
        if !(0.0..1.0).contains(&self.max_lighting) {
            anyhow::bail!("max_lighting must be in [0, 1), got {}", self.max_lighting);
        }
        Ok(())
    }

    /// The training image at `size` x `size` from the item `img` (at the item size, which
    /// presizing makes larger): flip, one resample for every geometric change and the
    /// resize, then lighting.
    pub fn apply(&self, mut img: Pixels, size: u32, rng: &mut impl Rng) -> Pixels {
        let flip = rng.gen::<f64>() < 0.5;
        let do_affine = rng.gen::<f64>() < self.p_affine;
        let (angle, shear, zoom) = (sym(rng, self.rotate).to_radians(), sym(rng, self.shear), 1.0 + sym(rng, self.scale));
        let (tx, ty) = (sym(rng, self.translate) * size as f64, sym(rng, self.translate) * size as f64);
        let do_lighting = rng.gen::<f64>() < self.p_lighting;
        let (b, c) = (sym(rng, self.brightness), 1.0 + sym(rng, self.contrast));
        // fastai's pieces draw after the ones above, so adding them shifted nothing.
        let do_zoom = rng.gen::<f64>() < self.p_affine;
        let (z, zx, zy) = (uniform(rng, self.min_zoom, self.max_zoom), rng.gen::<f64>(), rng.gen::<f64>());
        let do_warp = rng.gen::<f64>() < self.p_affine;
        let (warp_x, warp_y) = (sym(rng, self.max_warp), sym(rng, self.max_warp));
        let (do_bright, bright) =
            (rng.gen::<f64>() < self.p_lighting, uniform(rng, 0.5 * (1.0 - self.max_lighting), 0.5 * (1.0 + self.max_lighting)));
        let lo = (1.0 - self.max_lighting).ln();
        let (do_contrast, contrast) = (rng.gen::<f64>() < self.p_lighting, uniform(rng, lo, -lo).exp());
        let (area, at_x, at_y) = (uniform(rng, self.min_scale, 1.0), rng.gen::<f64>(), rng.gen::<f64>());

        if self.flip && flip {
            flip_lr(&mut img);
        }
        let mut g = Geometry::whole(img.width, img.height);
        let mut moved = img.width != size || img.height != size;
        if self.has_affine() && do_affine {
            // Forward map about the centre: p' = zoom * R(angle) * Shear * (p - centre) + centre + t.
            let (s, co) = angle.sin_cos();
            let m = [zoom * co, zoom * (co * shear - s), zoom * s, zoom * (s * shear + co)];
            let det = m[0] * m[3] - m[1] * m[2];
            (g.inv, g.shift) = ([m[3] / det, -m[1] / det, -m[2] / det, m[0] / det], (tx, ty));
            moved = true;
        }
        if self.has_zoom() && do_zoom && z != 1.0 {
            let s = 1.0 / z;
            g.zoom = Some((s, ((1.0 - s) * (2.0 * zx - 1.0), (1.0 - s) * (2.0 * zy - 1.0))));
            moved = true;
        }
        if self.max_warp != 0.0 && do_warp {
            g.warp = warp_of(warp_x, warp_y);
            moved |= g.warp.is_some();
        }
        if self.min_scale < 1.0 && area < 1.0 {
            // A square of `area` of the item, placed at random where what the output samples
            // stays inside the item: the margin presizing leaves is used before any padding.
            let side = area.sqrt() * img.width.min(img.height) as f64;
            g.place_window((side - 1.0) / 2.0, img.width, img.height, size, (at_x, at_y));
            moved = true;
        }
        if moved {
            img = resample(&img, size, &g, self.pad_mode);
        }
        if self.has_lighting() && do_lighting {
            for v in img.data.iter_mut() {
                *v = ((*v as f64 - 128.0) * c + 128.0 + b * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        if self.max_lighting != 0.0 && (do_bright || do_contrast) {
            // fastai's LightingTfm: logit, + logit(brightness), * contrast, sigmoid; as a table.
            let table: Vec<u8> = (0..256)
                .map(|v| {
                    let mut l = logit(v as f64 / 255.0);
                    if do_bright {
                        l += logit(bright);
                    }
                    if do_contrast {
                        l *= contrast;
                    }
                    (255.0 / (1.0 + (-l).exp())).round() as u8
                })
                .collect();
            for v in img.data.iter_mut() {
                *v = table[*v as usize];
            }
        }
        img
    }
}

fn flip_lr(img: &mut Pixels) {
    let (w, c) = (img.width as usize, img.channels);
    for row in img.data.chunks_mut(w * c) {
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
}

/// A `size` x `size` image whose pixel (x, y) is `src` sampled bilinearly where `g` says,
/// the border filled by `mode`.
fn resample(src: &Pixels, size: u32, g: &Geometry, mode: PadMode) -> Pixels {
    let (w, h, c) = (src.width as i64, src.height as i64, src.channels);
    let n = size as i64;
    let mut out = vec![0u8; (n * n) as usize * c];
    let px = |x: i64, y: i64, k: usize| {
        let (x, y) = match mode {
            PadMode::Reflection => (reflect(x, w), reflect(y, h)),
            PadMode::Border => (x.clamp(0, w - 1), y.clamp(0, h - 1)),
            PadMode::Zeros if x < 0 || y < 0 || x >= w || y >= h => return 0.0,
            PadMode::Zeros => (x, y),
        };
        src.data[((y * w + x) as usize) * c + k] as f64
    };
    for y in 0..n {
        for x in 0..n {
            let (sx, sy) = g.source(x as f64, y as f64, size);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for k in 0..c {
                let top = px(x0, y0, k) * (1.0 - fx) + px(x0 + 1, y0, k) * fx;
                let bottom = px(x0, y0 + 1, k) * (1.0 - fx) + px(x0 + 1, y0 + 1, k) * fx;
                out[((y * n + x) as usize) * c + k] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
        }
    }
    Pixels { width: size, height: size, channels: c, data: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp() -> Pixels {
        Pixels { width: 8, height: 8, channels: 1, data: (0..64).map(|i| (i * 4) as u8).collect() }
    }

    fn rng(s: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(s)
    }

    fn affine(m: [f64; 4], t: (f64, f64)) -> Geometry {
        let det = m[0] * m[3] - m[1] * m[2];
        Geometry { inv: [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det], shift: t, ..Geometry::whole(8, 8) }
    }

    #[test]
    fn identity_leaves_pixels_alone_and_whole_geometry_is_exact() {
        assert_eq!(Augment::default().apply(ramp(), 8, &mut rng(1)), ramp());
        assert_eq!(resample(&ramp(), 8, &Geometry::whole(8, 8), PadMode::Reflection), ramp());
        // Only a resize (presizing with nothing drawn): the corners map onto the corners.
        let big = Pixels { width: 15, height: 15, channels: 1, data: (0..225).map(|i| (i % 15 * 10 + i / 15) as u8).collect() };
        let small = resample(&big, 8, &Geometry::whole(15, 15), PadMode::Zeros);
        assert_eq!((small.data[0], small.data[7], small.data[63]), (big.data[0], big.data[14], big.data[224]));
    }

    #[test]
    fn flip_and_quarter_turn_move_pixels_where_expected() {
        let mut img = ramp();
        flip_lr(&mut img);
        assert_eq!(img.data[0], ramp().data[7]);
        let turned = resample(&ramp(), 8, &affine([0.0, -1.0, 1.0, 0.0], (0.0, 0.0)), PadMode::Zeros);
        // Forward map rotates (x, y) about the centre to (-y, x); the output's top-right came from the top-left.
        assert_eq!(turned.data[7], ramp().data[0]);
        // Shifted right by 2: the first columns come from outside, filled by the mode.
        let shifted = |mode| resample(&ramp(), 8, &affine([1.0, 0.0, 0.0, 1.0], (2.0, 0.0)), mode).data[0];
        assert_eq!((shifted(PadMode::Zeros), shifted(PadMode::Border), shifted(PadMode::Reflection)), (0, 0, 8));
    }

    #[test]
    fn warp_is_fastais_homography() {
        let h = warp_of(0.1, 0.2).unwrap();
        let g = Geometry { warp: Some(h), ..Geometry::whole(3, 3) };
        // On a 3 x 3 output the corners are at -1 and 1; the moved corner (-1 - y_t, -1 - x_t) maps to (-1, -1).
        let apply = |u: f64, v: f64| {
            let d = h[6] * u + h[7] * v + 1.0;
            ((h[0] * u + h[1] * v + h[2]) / d, (h[3] * u + h[4] * v + h[5]) / d)
        };
        let (u, v) = apply(-1.2, -1.1);
        assert!((u + 1.0).abs() < 1e-9 && (v + 1.0).abs() < 1e-9, "{u} {v}");
        let (u, v) = apply(1.0 - 0.2, 1.0 - 0.1);
        assert!((u - 1.0).abs() < 1e-9 && (v - 1.0).abs() < 1e-9, "{u} {v}");
        assert_ne!(g.source(0.0, 0.0, 3), (0.0, 0.0), "a warped corner samples elsewhere");
        let none = warp_of(0.0, 0.0).unwrap();
        assert!(none.iter().zip([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{none:?}");
    }

    fn busy() -> Augment {
        Augment {
            flip: true,
            rotate: 15.0,
            shear: 0.3,
            scale: 0.2,
            translate: 0.1,
            brightness: 0.2,
            contrast: 0.2,
            p_affine: 1.0,
            p_lighting: 1.0,
            max_zoom: 1.2,
            max_warp: 0.2,
            max_lighting: 0.3,
            min_scale: 0.5,
            ..Augment::default()
        }
    }

    #[test]
    fn aug_transforms_defaults_are_fastais() {
        let a = AugTransforms::default();
        assert_eq!(
            (a.size, a.mult, a.do_flip, a.max_rotate, a.min_zoom, a.max_zoom, a.max_lighting, a.max_warp, a.p_affine, a.p_lighting, a.min_scale),
            (None, 1.0, true, 10.0, 1.0, 1.1, 0.2, 0.2, 0.75, 0.75, 1.0)
        );
        assert_eq!(a.pad_mode, PadMode::Reflection);
        let aug = a.augment();
        assert_eq!((aug.shear, aug.scale, aug.translate, aug.brightness, aug.contrast), (0.0, 0.0, 0.0, 0.0, 0.0), "only fastai's pieces");
        let doubled = AugTransforms { mult: 2.0, size: Some(64), ..a }.augment();
        assert_eq!((doubled.rotate, doubled.max_warp, doubled.max_lighting, doubled.max_zoom), (20.0, 0.4, 0.4, 1.1));
        let keys: Vec<&str> = AugTransforms { size: Some(64), ..AugTransforms::default() }.loader_options().iter().map(|o| o.0).collect();
        assert_eq!(keys[0], "size");
        // Every key is a loader option.
        let known: Vec<&str> = <Augment as crate::opts::Options>::table().iter().map(|o| o.key).collect();
        assert!(keys[1..].iter().all(|k| known.contains(k)), "{keys:?}");
    }

    #[test]
    fn same_generator_same_result() {
        let run = |s| busy().apply(ramp(), 6, &mut rng(s));
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert_eq!((run(3).width, run(3).height), (6, 6));
    }

    #[test]
    fn lighting_in_logit_space_keeps_order_and_settings_are_checked() {
        let aug = Augment { max_lighting: 0.5, p_lighting: 1.0, ..Augment::default() };
        let out = aug.apply(ramp(), 8, &mut rng(9));
        assert_ne!(out, ramp());
        assert!(out.data.windows(2).all(|w| w[0] <= w[1]), "monotone: {:?}", out.data);
        assert!(aug.check().is_ok());
        assert!(Augment { max_lighting: 1.0, ..Augment::default() }.check().is_err());
        assert!(Augment { min_scale: 0.0, ..Augment::default() }.check().is_err());
        assert!(Augment { min_zoom: 1.2, max_zoom: 1.1, ..Augment::default() }.check().is_err());
    }

    /// An item of one grey: any other value in the output came from the padding.
    fn flat(side: u32) -> Pixels {
        Pixels { width: side, height: side, channels: 1, data: vec![200; (side * side) as usize] }
    }

    /// Output pixels that the zero padding reached, over 40 draws.
    fn padded(aug: &Augment, item: u32, size: u32) -> usize {
        (0..40).map(|s| aug.apply(flat(item), size, &mut rng(s)).data.iter().filter(|&&v| v != 200).count()).sum()
    }

    #[test]
    fn presizing_keeps_padding_out_of_the_corners() {
        // Naive: the item at the final size, rotated and zoomed there (no margin to crop
        // from); presized: fastai's book recipe, the item twice the size and
        // aug_transforms(min_scale: 0.75), whose window is placed inside the item.
        let aug = Augment { flip: true, rotate: 10.0, max_zoom: 1.1, p_affine: 1.0, pad_mode: PadMode::Zeros, ..Augment::default() };
        let presized = Augment { min_scale: 0.75, ..aug.clone() };
        let (naive, pre) = (padded(&aug, 32, 32), padded(&presized, 64, 32));
        assert!(naive > 500 && pre * 4 < naive, "padded pixels: naive {naive}, presized {pre}");
        let corners = |a: &Augment, item| -> usize {
            (0..40).map(|s| a.apply(flat(item), 32, &mut rng(s))).map(|o| [0, 31, 992, 1023].iter().filter(|&&i| o.data[i] != 200).count()).sum()
        };
        let (naive_corners, pre_corners) = (corners(&aug, 32), corners(&presized, 64));
        assert!(naive_corners > 80 && pre_corners * 2 < naive_corners, "padded corners of 160: naive {naive_corners}, presized {pre_corners}");
        // fastai's full preset warps too (corners move up to 20%), more than the margin holds: fewer, not none.
        let warped = Augment { max_warp: 0.2, ..aug.clone() };
        assert!(padded(&Augment { min_scale: 0.75, ..warped.clone() }, 64, 32) < padded(&warped, 32, 32));
    }

    #[test]
    fn presizing_crops_from_the_larger_item_and_keeps_fine_detail() {
        // Stripes 2 px wide at 64 px are 1 px wide at 32: a crop of 3/4 of the area taken
        // from the 64 px item keeps them; taken from the item already at 32 px and
        // enlarged back, it blurs them (two interpolations instead of one).
        let stripes = Pixels { width: 64, height: 64, channels: 1, data: (0..64 * 64).map(|i| if i % 64 / 2 % 2 == 0 { 30 } else { 230 }).collect() };
        let crop = Augment { min_scale: 0.75, ..Augment::default() };
        let contrast = |p: &Pixels| p.data.iter().map(|&v| (v as f64 - 130.0).abs()).sum::<f64>() / p.data.len() as f64;
        let (mut naive, mut pre) = (0.0, 0.0);
        for s in 0..20 {
            let small = resample(&stripes, 32, &Geometry::whole(64, 64), PadMode::Reflection);
            naive += contrast(&crop.apply(small, 32, &mut rng(s)));
            pre += contrast(&crop.apply(stripes.clone(), 32, &mut rng(s)));
        }
        assert!(pre > naive * 1.2, "mean distance from grey: presized {pre}, naive {naive}");
    }
}
