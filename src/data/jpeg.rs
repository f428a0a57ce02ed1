//! JPEG decoding with libjpeg-turbo's DCT scaling (`csrc/jpeg.c`): the IDCT can produce
//! the image at num/8 of its size directly, so a 500x375 photo needed at 224 px decodes
//! at 5/8 (313x235) for about half the work of a full decode. Warnings count as damage.
use super::image::Pixels;
use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, CStr};

extern "C" {
    fn runner_jpeg_decode(
        data: *const u8,
        len: usize,
        num: c_int,
        channels: c_int,
        out: *mut u8,
        cap: usize,
        width: *mut c_int,
        height: *mut c_int,
        msg: *mut c_char,
        msg_len: usize,
    ) -> c_int;
}

/// libjpeg's size at scale num/8 (it rounds up).
fn scaled(side: u32, num: u32) -> u32 {
    (side * num).div_ceil(8)
}

/// The smallest scale num/8 whose (width, height) still satisfies `covers`; 8 (a full
/// decode) when none smaller does, so nothing is upsampled more than a full decode would be.
pub fn scale_for(width: u32, height: u32, covers: impl Fn(u32, u32) -> bool) -> u32 {
    (1..8).find(|&n| covers(scaled(width, n), scaled(height, n))).unwrap_or(8)
}

/// Decodes `bytes` to 1 (grey) or 3 (RGB) channels at the smallest scale whose size
/// satisfies `covers` (`|_, _| false`: full size). `None`: a colour space this decoder
/// leaves to another (CMYK, YCCK).
pub fn decode(bytes: &[u8], channels: usize, covers: impl Fn(u32, u32) -> bool) -> Result<Option<Pixels>> {
    let Some((fw, fh)) = call(bytes, 8, channels, &mut [])? else {
        return Ok(None);
    };
    let num = scale_for(fw, fh, covers);
    let mut data = vec![0u8; scaled(fw, num) as usize * scaled(fh, num) as usize * channels];
    let (width, height) = call(bytes, num, channels, &mut data)?.expect("same header as before");
    Ok(Some(Pixels { width, height, channels, data }))
}

/// One call into the C side: the header only (`out` empty: full size) or a decode at num/8.
fn call(bytes: &[u8], num: u32, channels: usize, out: &mut [u8]) -> Result<Option<(u32, u32)>> {
    let mut msg = [0 as c_char; 200];
    let (mut w, mut h): (c_int, c_int) = (0, 0);
    let ptr = if out.is_empty() { std::ptr::null_mut() } else { out.as_mut_ptr() };
    // SAFETY: `bytes` and `out` are valid for their lengths; the C side writes at most
    // `out.len()` bytes and a NUL-terminated message of at most `msg.len()` bytes.
    let rc = unsafe {
        runner_jpeg_decode(bytes.as_ptr(), bytes.len(), num as c_int, channels as c_int, ptr, out.len(), &mut w, &mut h, msg.as_mut_ptr(), msg.len())
    };
    match rc {
        0 => Ok(Some((w as u32, h as u32))),
        2 => Ok(None),
        // SAFETY: the C side wrote a NUL-terminated message into `msg`.
        _ => bail!("damaged JPEG: {}", unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_scale_that_covers_the_target() {
        let min_side = |s: u32| move |w: u32, h: u32| w.min(h) >= s;
        assert_eq!(scale_for(500, 375, min_side(224)), 5, "5/8 of 375 is 235 >= 224, 4/8 is 188");
        assert_eq!(scale_for(500, 375, min_side(32)), 1);
        assert_eq!(scale_for(500, 375, min_side(376)), 8, "bigger than the photo: full decode, never more");
        assert_eq!(scale_for(500, 375, min_side(375)), 8);
        assert_eq!((scaled(500, 5), scaled(375, 5)), (313, 235));
    }

    #[test]
    fn scaled_decode_has_the_scaled_size_and_the_same_picture() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images/Abyssinian_101.jpg");
        let bytes = std::fs::read(path).unwrap();
        let full = decode(&bytes, 3, |_, _| false).unwrap().unwrap();
        let half = decode(&bytes, 3, |w, h| w.min(h) >= full.width.min(full.height) / 2).unwrap().unwrap();
        assert_eq!((half.width, half.height), (full.width.div_ceil(2), full.height.div_ceil(2)));
        // The half-size decode matches a 2x2 box average of the full one (up to IDCT rounding).
        let (fw, c) = (full.width as usize, 3);
        let mut diff = 0f64;
        for y in 0..half.height as usize - 1 {
            for x in 0..half.width as usize - 1 {
                for k in 0..c {
                    let at = |yy: usize, xx: usize| full.data[(yy * fw + xx) * c + k] as f64;
                    let avg = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4.0;
                    diff += (avg - half.data[(y * half.width as usize + x) * c + k] as f64).abs();
                }
            }
        }
        let mean = diff / ((half.width - 1) * (half.height - 1) * 3) as f64;
        assert!(mean < 3.0, "mean abs difference {mean}");
        let grey = decode(&bytes, 1, |_, _| false).unwrap().unwrap();
        assert_eq!(grey.data.len(), (full.width * full.height) as usize);
    }

    #[test]
    fn truncated_data_is_an_error_not_grey() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images/Abyssinian_101.jpg");
        let bytes = std::fs::read(path).unwrap();
        let e = decode(&bytes[..bytes.len() * 2 / 3], 3, |_, _| false).unwrap_err().to_string();
        assert!(e.contains("damaged JPEG") && e.contains("Premature end"), "{e}");
        assert!(decode(b"\xff\xd8\xff\xe0 nope", 3, |_, _| false).is_err());
    }
}
