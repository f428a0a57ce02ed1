//! Decoding and geometry: one image file to u8 pixels (HWC, 1 or 3 channels) at the target
//! size, with fastai's resize methods. `crop` takes the largest square at a position given
//! as fractions (random on train, centre on valid, shared by both images of a pair), `pad`
//! fits the whole image and fills the border, `squish` ignores the aspect ratio.
use super::pixels::Pixels;
use crate::opts::Choice;
use anyhow::{bail, Context, Result};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageFormat};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// How pixels from outside an image are filled (padding, the affine warp's border).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    Zeros,
    Reflection,
    Border,
}

/// How an image is brought to the square size: its pad mode is the augmentation's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Crop,
    Pad,
    Squish,
}

impl std::str::FromStr for PadMode {
    type Err = anyhow::Error;
    fn from_str(mode: &str) -> Result<PadMode> {
        Ok(match mode {
            "zeros" => PadMode::Zeros,
            "reflection" => PadMode::Reflection,
            "border" => PadMode::Border,
            m => bail!("unknown pad_mode `{m}`: use zeros, reflection or border"),
        })
    }
}

impl Choice for PadMode {
    fn name(&self) -> &'static str {
        match self {
            PadMode::Zeros => "zeros",
            PadMode::Reflection => "reflection",
            PadMode::Border => "border",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(method: &str) -> Result<Method> {
        Ok(match method {
            "crop" => Method::Crop,
            "squish" => Method::Squish,
            "pad" => Method::Pad,
            m => bail!("unknown resize method `{m}`: use crop, pad or squish"),
        })
    }
}

impl Choice for Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Crop => "crop",
            Method::Pad => "pad",
            Method::Squish => "squish",
        }
    }
}

impl Method {
    /// The side the resize brings to the target size: the shorter for crop and squish (so
    /// that both axes still hold that many pixels), the longer for pad.
    fn fitted_side(self, w: u32, h: u32) -> u32 {
        match self {
            Method::Crop | Method::Squish => w.min(h),
            Method::Pad => w.max(h),
        }
    }
}

thread_local! {
    // The resizer keeps scratch buffers; one per worker thread avoids reallocating them.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// fastai's `verify_images`: the files that do not decode as images, checked in parallel.
pub fn verify_images(files: &[PathBuf]) -> Vec<PathBuf> {
    use rayon::prelude::*;
    files.par_iter().filter(|f| decode(f, 3).is_err()).cloned().collect()
}

/// An image file's (width, height) from its header, without decoding the pixels.
pub fn image_size(path: &Path) -> Result<(u32, u32)> {
    image::image_dimensions(path).with_context(|| format!("cannot read the size of {}", path.display()))
}

/// Decodes an image file to 1 (grey) or 3 (RGB) channels at full size; errors name the
/// file. Every image the runner reads comes through here or `decode_for`, so damaged files
/// are caught in one place.
pub fn decode(path: &Path, channels: usize) -> Result<Pixels> {
    Ok(decode_scaled(path, channels, |_, _| false, |_, _| None)?.pixels)
}

/// Decodes an image file for `method` at `size`: JPEGs at the smallest DCT scale that still
/// holds every pixel the resize reads (see `jpeg`), other formats at full size.
pub fn decode_for(path: &Path, channels: usize, method: Method, size: u32) -> Result<Pixels> {
    Ok(decode_scaled(path, channels, covers(method, size), |_, _| None)?.pixels)
}

/// One image file as the loader needs it: decoded and resized to `size` by `method` (a pad
/// filled by `pad`), the crop at `at`. A JPEG's crop decodes only the rows and columns that its box and the
/// resize filter reach (a 4:3 photo skips a quarter of its inverse DCT).
pub fn load_resized(path: &Path, channels: usize, method: Method, pad: PadMode, size: u32, at: (f64, f64)) -> Result<Pixels> {
    let resized = |r: Result<Pixels>| r.with_context(|| format!("cannot resize {}", path.display()));
    if method != Method::Crop {
        return resized(resize(&decode_for(path, channels, method, size)?, method, pad, size, at));
    }
    let reach = |w: u32, h: u32| {
        let (left, top, side) = square(w as f64, h as f64, at);
        // The bilinear filter reads up to `side / size` pixels beyond the box.
        let margin = (side / size as f64).ceil() + 1.0;
        let span = |from: f64, limit: u32| {
            let (a, b) = ((from - margin).floor().max(0.0) as u32, ((from + side + margin).ceil() as u32).min(limit));
            (a, b - a)
        };
        let ((x, width), (y, height)) = (span(left, w), span(top, h));
        Some(super::jpeg::Rect { x, y, width, height })
    };
    let d = decode_scaled(path, channels, covers(method, size), reach)?;
    let (left, top, side) = square(d.full.0 as f64, d.full.1 as f64, at);
    resized(resize_box(&d.pixels, (left - d.x as f64, top - d.y as f64, side, side), size, size))
}

/// Whether a decode of `w` x `h` holds every pixel `method` reads at `size`.
fn covers(method: Method, size: u32) -> impl Fn(u32, u32) -> bool + Copy {
    move |w, h| method.fitted_side(w, h) >= size
}

/// The largest square of a `w` x `h` image at `at` (fractions): (left, top, side).
fn square(w: f64, h: f64, at: (f64, f64)) -> (f64, f64, f64) {
    let side = w.min(h);
    ((w - side) * at.0, (h - side) * at.1, side)
}

fn decode_scaled(
    path: &Path,
    channels: usize,
    covers: impl Fn(u32, u32) -> bool,
    region: impl Fn(u32, u32) -> Option<super::jpeg::Rect>,
) -> Result<super::jpeg::Decoded> {
    if channels != 1 && channels != 3 {
        bail!("channels must be 1 or 3, got {channels}");
    }
    let limit = max_image_pixels()?;
    let (bytes, format) = read_image_file(path, limit)?;
    let whole = |pixels: Pixels| super::jpeg::Decoded { full: (pixels.width, pixels.height), pixels, x: 0, y: 0 };
    let px = match format {
        ImageFormat::Jpeg => match super::jpeg::header(&bytes) {
            Ok(Some(size)) => check_pixels(size, limit).and_then(|()| super::jpeg::decode(&bytes, size, channels, covers, region)),
            Ok(None) => decode_jpeg(&bytes, limit).map(|img| whole(into_pixels(img, channels))),
            Err(e) => Err(e),
        },
        _ => decode_other(&bytes, format, limit).map(|img| whole(into_pixels(img, channels))),
    };
    px.with_context(|| format!("cannot decode image {}", path.display()))
}

/// Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485): above it Pillow warns of a decompression
/// bomb, above twice it refuses the image (`DecompressionBombError`).
const PILLOW_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The default pixel limit: where Pillow refuses, so that whatever Pillow opens, we do.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 2 * PILLOW_MAX_IMAGE_PIXELS;

/// The most bytes a file may take per allowed pixel: 32-bit float RGBA (16 bytes, TIFF's
/// widest), so no image under the pixel limit is refused for its file size.
const MAX_FILE_BYTES_PER_PIXEL: u64 = 16;

/// Room for what is not pixels (EXIF, ICC profiles, thumbnails).
const FILE_SLACK_BYTES: u64 = 16 << 20;

/// The pixel limit (width x height) above which an image is refused before it is decoded:
/// `RUNNER_MAX_IMAGE_PIXELS` (0 turns it off), else `DEFAULT_MAX_IMAGE_PIXELS`. 0: none.
pub fn max_image_pixels() -> Result<u64> {
    static LIMIT: std::sync::OnceLock<std::result::Result<u64, String>> = std::sync::OnceLock::new();
    let parsed = LIMIT.get_or_init(|| match std::env::var("RUNNER_MAX_IMAGE_PIXELS") {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().replace('_', "").parse::<u64>().map_err(|_| format!("RUNNER_MAX_IMAGE_PIXELS=`{v}` is not a whole number of pixels"))
        }
        _ => Ok(DEFAULT_MAX_IMAGE_PIXELS),
    });
    parsed.clone().map_err(anyhow::Error::msg)
}

/// Refuses a declared `width` x `height` over `limit` pixels (0: no limit).
fn check_pixels((width, height): (u32, u32), limit: u64) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if limit > 0 && pixels > limit {
        bail!(
            "it declares {width}x{height} = {pixels} pixels, over the limit of {limit} (a decompression bomb?{}; \
             RUNNER_MAX_IMAGE_PIXELS raises the limit, 0 turns it off)",
            if limit == DEFAULT_MAX_IMAGE_PIXELS { " Pillow refuses it too" } else { "" }
        );
    }
    Ok(())
}

/// The most bytes an image file may have under a pixel limit (0: no limit).
pub fn max_image_file_bytes(limit: u64) -> Option<u64> {
    (limit > 0).then(|| limit.saturating_mul(MAX_FILE_BYTES_PER_PIXEL).saturating_add(FILE_SLACK_BYTES))
}

/// A regular file's bytes and format, its size checked first: a huge or sparse file
/// named `.jpg` is refused before it is read, and one in no known format after its first
/// bytes.
fn read_image_file(path: &Path, limit: u64) -> Result<(Vec<u8>, ImageFormat)> {
    use std::io::Read;
    let cannot = || format!("cannot read image {}", path.display());
    let meta = std::fs::metadata(path).with_context(cannot)?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let max = max_image_file_bytes(limit);
    let too_big = |len: u64| match max {
        Some(max) if len > max => Err(anyhow::anyhow!(
            "{} is {len} bytes, more than an image of at most {limit} pixels can take ({max} bytes); \
             RUNNER_MAX_IMAGE_PIXELS raises the limit, 0 turns it off",
            path.display()
        )),
        _ => Ok(()),
    };
    too_big(meta.len())?;
    let mut file = std::fs::File::open(path).with_context(cannot)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file).take(64).read_to_end(&mut bytes).with_context(cannot)?;
    let format = image::guess_format(&bytes).with_context(|| format!("cannot decode image {}", path.display()))?;
    // One byte more than allowed shows a file that grew since it was measured.
    file.take(max.map_or(u64::MAX, |m| m + 1 - bytes.len() as u64)).read_to_end(&mut bytes).with_context(cannot)?;
    too_big(bytes.len() as u64)?;
    Ok((bytes, format))
}

fn into_pixels(img: DynamicImage, channels: usize) -> Pixels {
    let (width, height) = (img.width(), img.height());
    let data = if channels == 1 { img.into_luma8().into_raw() } else { img.into_rgb8().into_raw() };
    Pixels { width, height, channels, data }
}

/// The `image` crate's decoders, for every format but JPEG; the declared size is checked
/// against `limit` first.
fn decode_other(bytes: &[u8], format: ImageFormat, limit: u64) -> Result<DynamicImage> {
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    check_pixels(reader().into_dimensions()?, limit)?;
    Ok(reader().decode()?)
}

/// CMYK JPEGs are decoded strictly: a lenient decoder (the `image` crate's default) fills a
/// truncated file or broken entropy-coded data with grey and reports success, and the run
/// would train on that garbage. Same decoder and colour handling as `image`, strict mode on;
/// the declared size is checked against `limit` before anything is allocated.
fn decode_jpeg(bytes: &[u8], limit: u64) -> Result<DynamicImage> {
    use zune_core::colorspace::ColorSpace;
    let options = zune_core::options::DecoderOptions::default().set_strict_mode(true).set_max_width(usize::MAX).set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(damaged)?;
    let (w, h) = decoder.dimensions().context("JPEG without dimensions")?;
    let (w, h) = (w as u32, h as u32);
    check_pixels((w, h), limit)?;
    let space = match decoder.input_colorspace() {
        Some(s @ (ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA)) => s,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(space));
    let data = decoder.decode().map_err(damaged)?;
    let img = match space {
        ColorSpace::Luma => image::GrayImage::from_raw(w, h, data).map(DynamicImage::ImageLuma8),
        ColorSpace::LumaA => image::GrayAlphaImage::from_raw(w, h, data).map(DynamicImage::ImageLumaA8),
        ColorSpace::RGBA => image::RgbaImage::from_raw(w, h, data).map(DynamicImage::ImageRgba8),
        _ => image::RgbImage::from_raw(w, h, data).map(DynamicImage::ImageRgb8),
    };
    img.context("JPEG decoder returned fewer pixels than the image has")
}

fn damaged(e: zune_jpeg::errors::DecodeErrors) -> anyhow::Error {
    // zune's Display quotes its static messages.
    anyhow::anyhow!("damaged JPEG: {}", e.to_string().trim_matches('"'))
}

fn pixel_type(channels: usize) -> PixelType {
    if channels == 1 {
        PixelType::U8
    } else {
        PixelType::U8x3
    }
}

/// Bilinear (antialiased, like Pillow's) resize of the `crop` box (left, top, w, h) of `src`.
fn resize_box(src: &Pixels, crop: (f64, f64, f64, f64), width: u32, height: u32) -> Result<Pixels> {
    let pt = pixel_type(src.channels);
    let src_ref = ImageRef::new(src.width, src.height, &src.data, pt)?;
    let mut dst = Image::new(width, height, pt);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(crop.0, crop.1, crop.2, crop.3);
    RESIZER.with(|r| r.borrow_mut().resize(&src_ref, &mut dst, &opts))?;
    Ok(Pixels { width, height, channels: src.channels, data: dst.into_vec() })
}

/// The image at `size` x `size` by `method` (a pad filled by `pad`); `at` = crop position as
/// fractions in [0, 1].
pub fn resize(src: &Pixels, method: Method, pad: PadMode, size: u32, at: (f64, f64)) -> Result<Pixels> {
    let (w, h) = (src.width as f64, src.height as f64);
    match method {
        Method::Squish => resize_box(src, (0.0, 0.0, w, h), size, size),
        Method::Crop => {
            let (left, top, side) = square(w, h, at);
            resize_box(src, (left, top, side, side), size, size)
        }
        Method::Pad => {
            let scale = size as f64 / w.max(h);
            let (nw, nh) = (((w * scale).round() as u32).clamp(1, size), ((h * scale).round() as u32).clamp(1, size));
            let inner = resize_box(src, (0.0, 0.0, w, h), nw, nh)?;
            Ok(pad_to(&inner, size, pad))
        }
    }
}

/// Centres `src` on a `size` x `size` canvas, filling the border by `mode`.
fn pad_to(src: &Pixels, size: u32, mode: PadMode) -> Pixels {
    let c = src.channels;
    let (w, h) = (src.width as i64, src.height as i64);
    let (x0, y0) = ((size as i64 - w) / 2, (size as i64 - h) / 2);
    let mut data = vec![0u8; size as usize * size as usize * c];
    for y in 0..size as i64 {
        for x in 0..size as i64 {
            let (sx, sy) = (x - x0, y - y0);
            let inside = (0..w).contains(&sx) && (0..h).contains(&sy);
            let (sx, sy) = match mode {
                _ if inside => (sx, sy),
                PadMode::Zeros => continue,
                PadMode::Border => (sx.clamp(0, w - 1), sy.clamp(0, h - 1)),
                PadMode::Reflection => (reflect(sx, w), reflect(sy, h)),
            };
            let s = ((sy * w + sx) as usize) * c;
            let d = ((y * size as i64 + x) as usize) * c;
            data[d..d + c].copy_from_slice(&src.data[s..s + c]);
        }
    }
    Pixels { width: size, height: size, channels: c, data }
}

/// Mirror index `i` into `0..n` (without repeating the edge pixel).
pub fn reflect(i: i64, n: i64) -> i64 {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    if m < n {
        m
    } else {
        period - m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pets() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images")
    }

    #[test]
    fn rot90_turns_counter_clockwise_like_torch() {
        // [[1, 2, 3], [4, 5, 6]] (2 rows, 3 columns); torch.rot90 gives [[3, 6], [2, 5], [1, 4]].
        let p = Pixels { width: 3, height: 2, channels: 1, data: vec![1, 2, 3, 4, 5, 6] };
        let r = p.rot90(1);
        assert_eq!((r.width, r.height, r.data.clone()), (2, 3, vec![3, 6, 2, 5, 1, 4]));
        assert_eq!(p.rot90(2).data, vec![6, 5, 4, 3, 2, 1]);
        assert_eq!(p.rot90(3).data, vec![4, 1, 5, 2, 6, 3]);
        assert_eq!(r.rot90(3), p);
        let rgb = Pixels { width: 2, height: 1, channels: 3, data: vec![1, 2, 3, 4, 5, 6] };
        assert_eq!(rgb.rot90(1).data, vec![4, 5, 6, 1, 2, 3], "channels move together");
    }

    #[test]
    fn decodes_jpeg_and_grey_pgm_to_the_wanted_channels() {
        let p = decode(&pets().join("Abyssinian_101.jpg"), 3).unwrap();
        assert_eq!(p.channels, 3);
        assert_eq!(p.data.len(), (p.width * p.height * 3) as usize);
        let face = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/orl_faces/s1/1.pgm");
        let g = decode(&face, 1).unwrap();
        assert_eq!((g.width, g.height, g.data.len()), (92, 112, 92 * 112));
        let rgb = decode(&face, 3).unwrap();
        assert_eq!(&rgb.data[..3], &[g.data[0]; 3], "grey is repeated into 3 channels");
    }

    #[test]
    fn decode_for_shrinks_jpegs_only_as_far_as_the_resize_allows() {
        let photo = pets().join("Abyssinian_101.jpg");
        let full = decode(&photo, 3).unwrap();
        let (w, h) = (full.width, full.height);
        for (method, size) in [(Method::Crop, 100), (Method::Squish, 100), (Method::Pad, 100), (Method::Crop, 20)] {
            let p = decode_for(&photo, 3, method, size).unwrap();
            assert!(p.width < w && p.height < h, "{method:?} {size}: decoded at {}x{} of {w}x{h}", p.width, p.height);
            let side = if method == Method::Pad { p.width.max(p.height) } else { p.width.min(p.height) };
            assert!(side >= size, "{method:?} {size}: {}x{} does not cover it", p.width, p.height);
        }
        let big = decode_for(&photo, 3, Method::Crop, w.max(h) * 2).unwrap();
        assert_eq!((big.width, big.height), (w, h), "never below the full size");
        let d = tempfile::tempdir().unwrap();
        let png = d.path().join("grey.png");
        image::GrayImage::from_fn(40, 30, |x, y| image::Luma([(x * 6 + y) as u8])).save(&png).unwrap();
        assert_eq!(decode_for(&png, 1, Method::Crop, 8).unwrap(), decode(&png, 1).unwrap(), "other formats decode in full");
    }

    #[test]
    fn load_resized_decodes_only_the_crop_and_gives_the_same_picture() {
        // A landscape and a portrait photo, crops at the edges and in between, and squish.
        for name in ["Abyssinian_101.jpg", "Abyssinian_12.jpg"] {
            let photo = pets().join(name);
            for (method, at) in [
                (Method::Crop, (0.5, 0.5)),
                (Method::Crop, (0.0, 1.0)),
                (Method::Crop, (1.0, 0.0)),
                (Method::Crop, (0.3, 0.8)),
                (Method::Squish, (0.5, 0.5)),
            ] {
                for (size, channels) in [(224, 3), (100, 3), (64, 1)] {
                    let want = resize(&decode_for(&photo, channels, method, size).unwrap(), method, PadMode::Zeros, size, at).unwrap();
                    let got = load_resized(&photo, channels, method, PadMode::Zeros, size, at).unwrap();
                    assert_eq!((got.width, got.height, got.channels), (size, size, channels));
                    let worst = got.data.iter().zip(&want.data).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                    assert!(worst <= 1, "{name} {method:?} at {at:?}, {size} px: pixels differ by up to {worst}");
                }
            }
        }
    }

    #[test]
    fn corrupt_file_error_names_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("broken.jpg");
        std::fs::write(&f, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
        let e = format!("{:#}", decode(&f, 3).unwrap_err());
        assert!(e.contains("broken.jpg"), "{e}");
    }

    /// A small real JPEG whose frame header is patched to declare `w` x `h`.
    fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_pixel(16, 16, image::Rgb([200, 10, 10])).write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        // SOF0: ff c0, length (2), precision (1), height (2), width (2).
        let sof = out.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        out[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        out[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        out
    }

    /// A 1x1 PNG whose header is patched to declare `w` x `h` (its CRC fixed, so only the size is odd).
    fn png_declaring(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::GrayImage::from_pixel(1, 1, image::Luma([7])).write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png).unwrap();
        // Signature (8), IHDR length (4), "IHDR" (4), width, height, 5 more bytes, CRC over type + data.
        out[16..20].copy_from_slice(&w.to_be_bytes());
        out[20..24].copy_from_slice(&h.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&out[12..29]);
        out[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        out
    }

    #[test]
    fn decompression_bombs_are_refused_by_their_declared_size_before_decoding() {
        let d = tempfile::tempdir().unwrap();
        let (jpg, png) = (d.path().join("bomb.jpg"), d.path().join("bomb.png"));
        std::fs::write(&jpg, jpeg_declaring(65500, 65500)).unwrap();
        std::fs::write(&png, png_declaring(100_000, 100_000)).unwrap();
        for (f, size) in [(&jpg, "65500x65500"), (&png, "100000x100000")] {
            let t = std::time::Instant::now();
            for e in [
                decode(f, 3).unwrap_err(),
                decode_for(f, 1, Method::Crop, 32).unwrap_err(),
                load_resized(f, 3, Method::Crop, PadMode::Reflection, 32, (0.5, 0.5)).unwrap_err(),
            ] {
                let e = format!("{e:#}");
                assert!(e.contains(&f.display().to_string()) && e.contains(size), "{e}");
                assert!(e.contains("over the limit of 178956970") && e.contains("RUNNER_MAX_IMAGE_PIXELS"), "{e}");
            }
            assert!(t.elapsed() < std::time::Duration::from_secs(5), "refused before decoding, not after");
        }
        assert_eq!(verify_images(&[jpg.clone(), png.clone()]), [jpg, png]);
        // Under the limit the same file decodes, and the limit is the caller's to set.
        let ok = d.path().join("ok.jpg");
        std::fs::write(&ok, jpeg_declaring(16, 16)).unwrap();
        assert_eq!(decode(&ok, 3).unwrap().width, 16);
        check_pixels((100, 100), 10_000).unwrap();
        let e = check_pixels((101, 100), 10_000).unwrap_err().to_string();
        assert!(e.contains("101x100 = 10100 pixels, over the limit of 10000") && !e.contains("Pillow"), "{e}");
        check_pixels((65500, 65500), 0).unwrap();
    }

    #[test]
    fn huge_files_are_refused_by_their_size_before_they_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sparse.jpg");
        let file = std::fs::File::create(&f).unwrap();
        file.set_len(6 << 30).unwrap(); // 6 GiB, nothing on disk
        let e = format!("{:#}", decode(&f, 3).unwrap_err());
        assert!(e.contains("sparse.jpg is 6442450944 bytes, more than an image of at most 178956970 pixels can take"), "{e}");
        assert_eq!(max_image_file_bytes(0), None);
        // A big file in no image format is refused after its first bytes, without reading it all.
        let zeros = d.path().join("zeros.png");
        std::fs::File::create(&zeros).unwrap().set_len(1 << 30).unwrap();
        let t = std::time::Instant::now();
        let e = format!("{:#}", decode(&zeros, 3).unwrap_err());
        assert!(e.contains("zeros.png") && e.contains("format could not be determined"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "read whole: {:?}", t.elapsed());
        std::fs::create_dir(d.path().join("dir.jpg")).unwrap();
        let e = format!("{:#}", decode(&d.path().join("dir.jpg"), 3).unwrap_err());
        assert!(e.contains("dir.jpg is not a regular file"), "{e}");
    }

    #[test]
    fn resize_methods_give_the_target_size() {
        // A 4x2 image: left half black, right half white.
        let src = Pixels { width: 4, height: 2, channels: 1, data: vec![0, 0, 255, 255, 0, 0, 255, 255] };
        let left = resize(&src, Method::Crop, PadMode::Zeros, 2, (0.0, 0.5)).unwrap();
        assert_eq!(left.data, vec![0, 0, 0, 0]);
        let right = resize(&src, Method::Crop, PadMode::Zeros, 2, (1.0, 0.5)).unwrap();
        assert_eq!(right.data, vec![255; 4]);
        let sq = resize(&src, Method::Squish, PadMode::Zeros, 2, (0.5, 0.5)).unwrap();
        assert!(sq.data[0] < 64 && sq.data[1] > 192, "squish keeps left dark, right bright: {:?}", sq.data);
        let padded = resize(&src, Method::Pad, PadMode::Zeros, 4, (0.5, 0.5)).unwrap();
        assert_eq!(padded.data[..4], [0; 4], "top border is zeros");
        assert_eq!(padded.data[12..], [0; 4], "bottom border is zeros");
        assert_eq!(padded.data[4..8], [0, 0, 255, 255]);
        let refl = resize(&src, Method::Pad, PadMode::Reflection, 4, (0.5, 0.5)).unwrap();
        assert_eq!(refl.data[..4], [0, 0, 255, 255]);
        assert_eq!((reflect(-1, 4), reflect(4, 4), reflect(5, 1)), (1, 2, 0));
    }
}
