//! Training-time augmentation on the resized u8 image, in the worker threads: horizontal
//! flip, an affine warp (rotate, shear, scale, translate: the distortions Omniglot Siamese
//! nets train with) sampled bilinearly, the border filled by `pad_mode` (fastai's default is
//! reflection; `border` suits white-background drawings), and brightness/contrast. Every parameter comes from the caller's generator,
//! which is derived from (seed, epoch, item), so results never depend on the thread.
use super::image::{reflect, PadMode};
use super::pixels::Pixels;
use rand::Rng;

crate::options! {
    /// The random changes each training image gets: an affine warp drawn as U(-max, max) per
    /// parameter (zoom as 1 +- scale), brightness `v + b * 255` and contrast around mid-grey
    /// `(v - 128) * c + 128`, each applied with its probability.
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
        /// probability of the affine warp per image
        opt p_affine: f64 = 0.75,
        /// probability of the lighting change per image
        opt p_lighting: f64 = 0.75,
    }
}

fn sym(rng: &mut impl Rng, max: f64) -> f64 {
    // Always consumes one number, so enabling one augmentation never shifts another's draws.
    let u: f64 = rng.gen();
    (2.0 * u - 1.0) * max
}

impl Augment {
    fn has_affine(&self) -> bool {
        self.rotate != 0.0 || self.shear != 0.0 || self.scale != 0.0 || self.translate != 0.0
    }

    fn has_lighting(&self) -> bool {
        self.brightness != 0.0 || self.contrast != 0.0
    }

    pub fn is_identity(&self) -> bool {
        !self.flip && !self.has_affine() && !self.has_lighting()
    }

    pub fn apply(&self, img: &mut Pixels, rng: &mut impl Rng) {
        let flip = rng.gen::<f64>() < 0.5;
        let do_affine = rng.gen::<f64>() < self.p_affine;
        let (angle, shear, zoom) = (sym(rng, self.rotate).to_radians(), sym(rng, self.shear), 1.0 + sym(rng, self.scale));
        let (tx, ty) = (sym(rng, self.translate) * img.width as f64, sym(rng, self.translate) * img.height as f64);
        let do_lighting = rng.gen::<f64>() < self.p_lighting;
        let (b, c) = (sym(rng, self.brightness), 1.0 + sym(rng, self.contrast));
        if self.flip && flip {
            flip_lr(img);
        }
        if self.has_affine() && do_affine {
            // Forward map about the centre: p' = zoom * R(angle) * Shear * (p - centre) + centre + t.
            let (s, co) = angle.sin_cos();
            let m = [zoom * co, zoom * (co * shear - s), zoom * s, zoom * (s * shear + co)];
            *img = warp(img, m, (tx, ty), self.pad_mode);
        }
        if self.has_lighting() && do_lighting {
            for v in img.data.iter_mut() {
                *v = ((*v as f64 - 128.0) * c + 128.0 + b * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
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

/// Applies the forward affine map `m` (2x2, about the centre) plus shift `t` by inverse
/// mapping each output pixel and sampling bilinearly, filling the border by `mode`.
fn warp(src: &Pixels, m: [f64; 4], t: (f64, f64), mode: PadMode) -> Pixels {
    let (w, h, c) = (src.width as i64, src.height as i64, src.channels);
    let det = m[0] * m[3] - m[1] * m[2];
    let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
    let (cx, cy) = ((w - 1) as f64 / 2.0, (h - 1) as f64 / 2.0);
    let mut out = vec![0u8; src.data.len()];
    let px = |x: i64, y: i64, k: usize| {
        let (x, y) = match mode {
            PadMode::Reflection => (reflect(x, w), reflect(y, h)),
            PadMode::Border => (x.clamp(0, w - 1), y.clamp(0, h - 1)),
            PadMode::Zeros if x < 0 || y < 0 || x >= w || y >= h => return 0.0,
            PadMode::Zeros => (x, y),
        };
        src.data[((y * w + x) as usize) * c + k] as f64
    };
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 - cx - t.0, y as f64 - cy - t.1);
            let sx = inv[0] * dx + inv[1] * dy + cx;
            let sy = inv[2] * dx + inv[3] * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for k in 0..c {
                let top = px(x0, y0, k) * (1.0 - fx) + px(x0 + 1, y0, k) * fx;
                let bottom = px(x0, y0 + 1, k) * (1.0 - fx) + px(x0 + 1, y0 + 1, k) * fx;
                out[((y * w + x) as usize) * c + k] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
        }
    }
    Pixels { width: src.width, height: src.height, channels: c, data: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp() -> Pixels {
        Pixels { width: 8, height: 8, channels: 1, data: (0..64).map(|i| (i * 4) as u8).collect() }
    }

    #[test]
    fn identity_leaves_pixels_alone_and_warp_identity_is_exact() {
        let mut img = ramp();
        Augment::default().apply(&mut img, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert_eq!(img, ramp());
        assert_eq!(warp(&ramp(), [1.0, 0.0, 0.0, 1.0], (0.0, 0.0), PadMode::Reflection), ramp());
    }

    #[test]
    fn flip_and_quarter_turn_move_pixels_where_expected() {
        let mut img = ramp();
        flip_lr(&mut img);
        assert_eq!(img.data[0], ramp().data[7]);
        let turned = warp(&ramp(), [0.0, -1.0, 1.0, 0.0], (0.0, 0.0), PadMode::Zeros);
        // Forward map rotates (x, y) about the centre to (-y, x); the output's top-right came from the top-left.
        assert_eq!(turned.data[7], ramp().data[0]);
        // Shifted right by 2: the first columns come from outside, filled by the mode.
        let shifted = |mode| warp(&ramp(), [1.0, 0.0, 0.0, 1.0], (2.0, 0.0), mode).data[0];
        assert_eq!((shifted(PadMode::Zeros), shifted(PadMode::Border), shifted(PadMode::Reflection)), (0, 0, 8));
    }

    #[test]
    fn same_generator_same_result() {
        let aug = Augment {
            flip: true,
            rotate: 15.0,
            shear: 0.3,
            scale: 0.2,
            translate: 0.1,
            brightness: 0.2,
            contrast: 0.2,
            p_affine: 1.0,
            p_lighting: 1.0,
            pad_mode: PadMode::Reflection,
        };
        let run = |s| {
            let mut img = ramp();
            aug.apply(&mut img, &mut rand_chacha::ChaCha8Rng::seed_from_u64(s));
            img
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert_ne!(run(3), ramp());
    }
}
