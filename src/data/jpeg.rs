//! JPEG decoding with libjpeg-turbo's DCT scaling (`csrc/jpeg.c`): the IDCT can produce
//! the image at num/8 of its size directly, so a 500x375 photo needed at 224 px decodes
//! at 5/8 (313x235) for about half the work of a full decode. A crop decodes only the rows
//! and columns its box reaches. Warnings count as damage.
use super::pixels::Pixels;
use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, CStr};

extern "C" {
    fn runner_jpeg_decode(
        data: *const u8,
        len: usize,
        num: c_int,
        channels: c_int,
        region: *const u32,
        out: *mut u8,
        cap: usize,
        x: *mut c_int,
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

/// A box of the (scaled) image: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What was decoded: `pixels` are the part of the whole scaled image (`full`) that starts
/// at (`x`, `y`).
pub struct Decoded {
    pub pixels: Pixels,
    pub x: u32,
    pub y: u32,
    pub full: (u32, u32),
}

/// The size a JPEG's header declares; `Ok(None)`: a colour space this decoder leaves to
/// another (CMYK, YCCK). Cheap: nothing is decoded, so a caller can refuse a decompression
/// bomb before `decode` allocates for it.
pub fn header(bytes: &[u8]) -> Result<Option<(u32, u32)>> {
    Ok(call(bytes, 8, 3, None, &mut [])?.map(|(_, w, h)| (w, h)))
}

/// Decodes `bytes` (whose `header` gave `size`) to 1 (grey) or 3 (RGB) channels at the
/// smallest scale whose size satisfies `covers` (`|_, _| false`: full size), only the rows
/// of `region(width, height)` of that size and its columns widened to the JPEG's block
/// boundaries (`None`: all).
pub fn decode(
    bytes: &[u8],
    size: (u32, u32),
    channels: usize,
    covers: impl Fn(u32, u32) -> bool,
    region: impl Fn(u32, u32) -> Option<Rect>,
) -> Result<Decoded> {
    let (fw, fh) = size;
    let num = scale_for(fw, fh, covers);
    let full = (scaled(fw, num), scaled(fh, num));
    let rect = region(full.0, full.1);
    let rows = rect.map_or(full.1, |r| r.height);
    let mut data = vec![0u8; full.0 as usize * rows as usize * channels];
    let (x, width, height) = call(bytes, num, channels, rect, &mut data)?.expect("same header as before");
    data.truncate(width as usize * height as usize * channels);
    let y = rect.map_or(0, |r| r.y);
    Ok(Decoded { pixels: Pixels { width, height, channels, data }, x, y, full })
}

/// One call into the C side: the header only (`out` empty: full size) or a decode at num/8.
fn call(bytes: &[u8], num: u32, channels: usize, rect: Option<Rect>, out: &mut [u8]) -> Result<Option<(u32, u32, u32)>> {
    let mut msg = [0 as c_char; 200];
    let (mut x, mut w, mut h): (c_int, c_int, c_int) = (0, 0, 0);
    let region = rect.map_or([0; 4], |r| [r.x, r.y, r.width, r.height]);
    let ptr = if out.is_empty() { std::ptr::null_mut() } else { out.as_mut_ptr() };
    // SAFETY: `bytes` and `out` are valid for their lengths, `region` holds 4 values; the C
    // side writes at most `out.len()` bytes and a NUL-terminated message of at most
    // `msg.len()` bytes.
    let rc = unsafe {
        runner_jpeg_decode(
            bytes.as_ptr(),
            bytes.len(),
            num as c_int,
            channels as c_int,
            region.as_ptr(),
            ptr,
            out.len(),
            &mut x,
            &mut w,
            &mut h,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    match rc {
        0 => Ok(Some((x as u32, w as u32, h as u32))),
        2 => Ok(None),
        // SAFETY: the C side wrote a NUL-terminated message into `msg`.
        _ => bail!("damaged JPEG: {}", unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images").join(name)).unwrap()
    }

    fn decode_all(bytes: &[u8], channels: usize, covers: impl Fn(u32, u32) -> bool, region: impl Fn(u32, u32) -> Option<Rect>) -> Result<Decoded> {
        decode(bytes, header(bytes)?.expect("a YCbCr JPEG"), channels, covers, region)
    }

    fn whole(bytes: &[u8], channels: usize, covers: impl Fn(u32, u32) -> bool) -> Result<Pixels> {
        Ok(decode_all(bytes, channels, covers, |_, _| None)?.pixels)
    }

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
        let bytes = photo("Abyssinian_101.jpg");
        let full = whole(&bytes, 3, |_, _| false).unwrap();
        let half = whole(&bytes, 3, |w, h| w.min(h) >= full.width.min(full.height) / 2).unwrap();
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
        let grey = whole(&bytes, 1, |_, _| false).unwrap();
        assert_eq!(grey.data.len(), (full.width * full.height) as usize);
    }

    #[test]
    fn truncated_data_is_an_error_not_grey() {
        let bytes = photo("Abyssinian_101.jpg");
        let e = whole(&bytes[..bytes.len() * 2 / 3], 3, |_, _| false).unwrap_err().to_string();
        assert!(e.contains("damaged JPEG") && e.contains("Premature end"), "{e}");
        assert!(whole(b"\xff\xd8\xff\xe0 nope", 3, |_, _| false).is_err());
        // Rows outside a box are skipped, not ignored: damage below it is still found.
        let top = |_: u32, _: u32| Some(Rect { x: 10, y: 0, width: 50, height: 20 });
        let e = decode_all(&bytes[..bytes.len() * 2 / 3], 3, |_, _| false, top).err().expect("damage below the box").to_string();
        assert!(e.contains("Premature end"), "{e}");
    }

    #[test]
    fn a_box_decodes_the_same_pixels_as_the_whole_image() {
        for (name, channels) in [("Abyssinian_101.jpg", 3), ("Abyssinian_12.jpg", 3), ("Abyssinian_101.jpg", 1)] {
            let bytes = photo(name);
            for num_covers in [0u32, 200] {
                let covers = |w: u32, h: u32| num_covers > 0 && w.min(h) >= num_covers;
                let full = whole(&bytes, channels, covers).unwrap();
                let want = Rect { x: full.width / 5 + 3, y: full.height / 7 + 1, width: full.width / 2, height: full.height / 3 };
                let d = decode_all(&bytes, channels, covers, |w, h| {
                    assert_eq!((w, h), (full.width, full.height));
                    Some(want)
                })
                .unwrap();
                assert_eq!(d.full, (full.width, full.height));
                assert_eq!((d.y, d.pixels.height), (want.y, want.height), "exactly the rows asked for");
                assert!(d.x <= want.x && d.x + d.pixels.width >= want.x + want.width, "{name}: columns {}+{} hold the box", d.x, d.pixels.width);
                assert!(d.pixels.width < full.width, "{name}: fewer columns than the whole image");
                let c = channels;
                for row in 0..want.height as usize {
                    let got = &d.pixels.data[row * d.pixels.width as usize * c..][..d.pixels.width as usize * c];
                    let at = ((want.y as usize + row) * full.width as usize + d.x as usize) * c;
                    assert!(got == &full.data[at..at + got.len()], "{name} ({c} channels, covers {num_covers}): row {row} differs");
                }
            }
        }
    }
}
