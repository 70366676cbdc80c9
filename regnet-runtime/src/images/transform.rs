//! torchvision's evaluation transform, exact to PIL's resampling, and the decoding of image
//! files as PIL opens them.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, Limits, RgbImage};

use super::ImageError;

/// ImageNet's channel means and standard deviations, RGB.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The shorter side after resizing, before the centre crop.
pub const RESIZE: usize = 256;

/// Fixed-point bits of PIL's 8-bit resampling coefficients (`PRECISION_BITS` in Resample.c).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The largest image file read (it is read whole before decoding): far above any photo, low
/// enough that a mistaken multi-gigabyte file is refused before it fills the memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The most memory an image's decoded pixels may take, so that a small file claiming huge
/// dimensions (a decompression bomb) is refused before anything is allocated: the `image`
/// crate's default allocation limit, 178,956,970 8-bit RGB pixels (13,377²), which is where PIL
/// too refuses an image as a decompression bomb (twice `Image.MAX_IMAGE_PIXELS`).
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

/// Reads an image file (JPEG, PNG, WebP) as 8-bit RGB; see [`decode`]. Only a regular file of
/// at most [`MAX_FILE_BYTES`] is read, so a FIFO or device is an error instead of a hang.
pub fn read(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes =
        regnet_spec::files::read_regular(path, MAX_FILE_BYTES, "an image").map_err(|source| {
            ImageError::Read {
                path: path.into(),
                source,
            }
        })?;
    decode(&bytes)
}

/// Decodes an image (JPEG, PNG, WebP, told apart by content) as 8-bit RGB with the pixels PIL's
/// `Image.open(...).convert("RGB")` gives (see [`to_rgb8_as_pil`]). A truncated image, one
/// without pixels and one whose pixels take more than [`MAX_DECODED_BYTES`] are errors, the last
/// found from the header, before any pixel is decoded.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    decode_rgb(bytes).map_err(|reason| ImageError::Decode { reason })
}

fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let Some(format) = reader.format() else {
        return Err(if bytes.is_empty() {
            "the file is empty".into()
        } else {
            "the file is not a JPEG, PNG or WebP image (told by its content, not its name)".into()
        });
    };
    if let Some(reason) = truncation(format, bytes) {
        return Err(format!("{reason}: {TRUNCATED}"));
    }
    let mut decoder = reader.into_decoder().map_err(decoding_error)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(format!(
            "the image is {width}×{height} pixels; it has no pixels to classify"
        ));
    }
    let needed = decoder.total_bytes();
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    if limits.reserve(needed).is_err() {
        return Err(format!(
            "the image is {width}×{height} pixels, which take {} decoded, more than the {} \
             allowed; scale it down first",
            mebibytes(needed),
            mebibytes(MAX_DECODED_BYTES)
        ));
    }
    // What is left of the limit bounds the decoder's own working memory.
    decoder.set_limits(limits).map_err(decoding_error)?;
    let image = DynamicImage::from_decoder(decoder).map_err(decoding_error)?;
    let gray16_png = format == ImageFormat::Png && png_is_16_bit_gray(bytes);
    Ok(to_rgb8_as_pil(&image, gray16_png))
}

/// What every truncated image is told to be.
const TRUNCATED: &str = "the file is truncated (an incomplete download or copy?)";

/// A decoder's error as said to the user: a decoder running out of data ("unexpected end of
/// file") is a truncated file.
fn decoding_error(error: image::ImageError) -> String {
    match error {
        image::ImageError::IoError(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the image data end before the image does: {TRUNCATED}")
        }
        error => error.to_string(),
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
}

/// What shows the data of an image of `format` to be cut short, if anything does. The decoders
/// here accept some truncated images that libjpeg and libwebp, and so PIL and torchvision,
/// refuse ("image file is truncated"): zune-jpeg (its strict mode, which the `image` crate turns
/// off, is not reachable) paints what is missing gray, and image-webp ignores a missing tail of
/// a lossless bitstream. A PNG needs no check: its decoder fails when pixels are missing, and
/// like PIL accepts a file cut in its final chunks, after all the pixels.
fn truncation(format: ImageFormat, bytes: &[u8]) -> Option<String> {
    match format {
        ImageFormat::Jpeg if !jpeg_reaches_its_end(bytes) => {
            Some("the JPEG data end before their end-of-image marker".into())
        }
        ImageFormat::WebP => {
            // RIFF: "RIFF", then the length of what follows those 8 bytes (little-endian).
            let declared = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
            let length = u64::from(declared) + 8;
            ((bytes.len() as u64) < length).then(|| {
                format!(
                    "the WebP data are {} bytes; their header says {length}",
                    bytes.len()
                )
            })
        }
        _ => None,
    }
}

/// Whether JPEG data reach their end-of-image marker (EOI), which libjpeg requires, even when
/// only the marker is missing. The marker segments are walked, by their lengths, rather than the
/// last two bytes looked at: bytes after EOI (camera trailers) are allowed, and an EXIF
/// thumbnail's own EOI, inside a segment, does not count.
fn jpeg_reaches_its_end(bytes: &[u8]) -> bool {
    // After the start-of-image marker.
    let mut position = 2;
    while let Some(&[first, marker]) = bytes.get(position..position + 2) {
        if first != 0xFF {
            // Entropy-coded data after a start-of-scan, or stray bytes libjpeg skips too.
            position += 1;
            continue;
        }
        position += match marker {
            0xD9 => return true,
            // A fill byte before a marker.
            0xFF => 1,
            // A stuffed 0xFF in entropy-coded data, a restart marker, TEM: no segment follows.
            0x00 | 0xD0..=0xD7 | 0x01 => 2,
            // A segment, whose length counts its two length bytes.
            _ => match bytes.get(position + 2..position + 4) {
                Some(&[high, low]) => 2 + usize::from(u16::from_be_bytes([high, low])),
                _ => return false,
            },
        };
    }
    false
}

/// Whether PNG data hold 16-bit grayscale (with or without a transparent gray value), from the
/// image header, which a PNG has first (bit depth at byte 24, color type at 25). The decoder
/// cannot tell: it turns a transparent gray value into an alpha channel.
fn png_is_16_bit_gray(bytes: &[u8]) -> bool {
    bytes.get(24..26) == Some(&[16, 0])
}

/// 8-bit RGB as PIL's `convert("RGB")` makes it from the mode PIL opens the image in: gray
/// replicated, alpha dropped, a palette looked up. 16-bit images differ from the `image`
/// crate's own conversion, which scales by 255/65535: PIL opens 16-bit grayscale as 16-bit
/// integers (mode "I;16"), which it clamps to 255, and every other 16-bit PNG as 8-bit,
/// keeping each sample's high byte.
pub(super) fn to_rgb8_as_pil(image: &DynamicImage, gray16_png: bool) -> RgbImage {
    let narrow: fn(u16) -> u8 = match image {
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) if gray16_png => {
            |sample| sample.min(255) as u8
        }
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_) => |sample| (sample >> 8) as u8,
        _ => return image.to_rgb8(),
    };
    // Same depth: gray is replicated and alpha dropped, every sample kept as it is.
    let wide = image.to_rgb16();
    let (width, height) = wide.dimensions();
    let samples = wide.into_raw().into_iter().map(narrow).collect();
    RgbImage::from_raw(width, height, samples).expect("as many samples as the 16-bit image")
}

/// torchvision's `Resize(RESIZE)` output size: the shorter side becomes `RESIZE`, the longer
/// `int(RESIZE · long / short)` (truncated, as Python's `int` does).
fn resized(width: usize, height: usize) -> (usize, usize) {
    let scale = |long: usize, short: usize| (RESIZE as f64 * long as f64 / short as f64) as usize;
    if width <= height {
        (RESIZE, scale(height, width))
    } else {
        (scale(width, height), RESIZE)
    }
}

/// PIL's resampling weights for the outputs `outputs` of one axis resized from `input` to
/// `output` samples (`precompute_coeffs` with the bilinear filter, then `normalize_coeffs_8bpc`):
/// for each, the first input index and fixed-point weights. Only the outputs the crop keeps are
/// computed, so a very elongated image costs no more than its crop.
fn coefficients(
    input: usize,
    output: usize,
    outputs: std::ops::Range<usize>,
) -> Vec<(usize, Vec<i32>)> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    // PIL multiplies by the reciprocal; dividing could round a weight differently.
    let inverse = 1.0 / filter_scale;
    let support = filter_scale;
    outputs
        .map(|x| {
            let center = (x as f64 + 0.5) * scale;
            let first = ((center - support + 0.5) as isize).max(0) as usize;
            let last = ((center + support + 0.5) as usize).min(input);
            let weights: Vec<f64> = (first..last)
                .map(|i| (1.0 - ((i as f64 - center + 0.5) * inverse).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w =
                        if total == 0.0 { *w } else { w / total } * f64::from(1 << PRECISION_BITS);
                    (if w < 0.0 { w - 0.5 } else { w + 0.5 }) as i32
                })
                .collect();
            (first, fixed)
        })
        .collect()
}

/// One weighted sum in PIL's fixed point, rounded and clamped to a byte.
fn resample(samples: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let sum = samples
        .zip(weights)
        .fold(1i64 << (PRECISION_BITS - 1), |sum, (s, &w)| {
            sum + i64::from(s) * i64::from(w)
        });
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The window `columns` × `rows` of PIL's `resize((width, height), BILINEAR)`: a horizontal
/// pass into bytes, then a vertical one (each skipped when that size does not change). Every
/// output pixel depends only on its own row and column weights, so computing only the window
/// gives PIL's values there exactly.
fn resize_window(
    image: &RgbImage,
    (width, height): (usize, usize),
    columns: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
) -> RgbImage {
    let (in_width, in_height) = (image.width() as usize, image.height() as usize);
    let window_width = columns.len() as u32;
    let horizontal = if width != in_width {
        let weights = coefficients(in_width, width, columns);
        RgbImage::from_fn(window_width, in_height as u32, |x, y| {
            let (first, weights) = &weights[x as usize];
            image::Rgb(std::array::from_fn(|c| {
                resample(
                    (0..weights.len()).map(|i| image.get_pixel((first + i) as u32, y).0[c]),
                    weights,
                )
            }))
        })
    } else {
        image::imageops::crop_imm(
            image,
            columns.start as u32,
            0,
            window_width,
            in_height as u32,
        )
        .to_image()
    };
    if height != in_height {
        let weights = coefficients(in_height, height, rows.clone());
        RgbImage::from_fn(window_width, rows.len() as u32, |x, y| {
            let (first, weights) = &weights[y as usize];
            image::Rgb(std::array::from_fn(|c| {
                resample(
                    (0..weights.len()).map(|i| horizontal.get_pixel(x, (first + i) as u32).0[c]),
                    weights,
                )
            }))
        })
    } else {
        image::imageops::crop_imm(
            &horizontal,
            0,
            rows.start as u32,
            window_width,
            rows.len() as u32,
        )
        .to_image()
    }
}

/// torchvision's centre-crop offset: `int(round((size - crop) / 2))`, Python's round (ties to
/// even).
fn crop_offset(size: usize, crop: usize) -> usize {
    ((size as f64 - crop as f64) / 2.0)
        .round_ties_even()
        .max(0.0) as usize
}

/// The network input of one image, CHW f32, `crop`×`crop`: resized, centre-cropped, scaled to
/// [0, 1] and normalized; with `bgr`, channels in B, G, R order (pycls's original checkpoints).
pub fn preprocess(image: &RgbImage, crop: usize, bgr: bool) -> Vec<f32> {
    let size = resized(image.width() as usize, image.height() as usize);
    let (left, top) = (crop_offset(size.0, crop), crop_offset(size.1, crop));
    // The part of the resized image inside the crop; a crop larger than the image pads with
    // zeros, as torchvision's does.
    let (columns, rows) = (left..size.0.min(left + crop), top..size.1.min(top + crop));
    let window = resize_window(image, size, columns.clone(), rows.clone());
    let mut tensor = vec![0.0f32; 3 * crop * crop];
    for c in 0..3 {
        let channel = if bgr { 2 - c } else { c };
        for y in 0..crop {
            for x in 0..crop {
                let (sx, sy) = (x + left, y + top);
                let value = if columns.contains(&sx) && rows.contains(&sy) {
                    let pixel = window.get_pixel((sx - left) as u32, (sy - top) as u32);
                    f32::from(pixel.0[channel]) / 255.0
                } else {
                    0.0
                };
                tensor[(c * crop + y) * crop + x] = (value - MEAN[channel]) / STD[channel];
            }
        }
    }
    tensor
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::weights::decode_f32;

    use super::*;

    fn images() -> PathBuf {
        // The CLI's classify tests use the same committed images.
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../regnet-cli/tests/images")
    }

    /// Against torchvision on the committed images (tools/make_images.py), after normalization:
    /// lossless images within 1e-2 (the resampling is PIL's, to the bit: measured 0); a JPEG
    /// decodes slightly differently here (zune-jpeg) than in PIL (libjpeg-turbo), so for it the
    /// mean difference is held to 1e-2 and the largest one to 0.1 (measured 5.2e-2, about three
    /// 8-bit levels at a few pixels). The measured differences are printed.
    #[test]
    fn preprocessing_matches_torchvision() {
        let bytes = std::fs::read(images().join("expected.safetensors")).unwrap();
        let expected = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in expected.tensors() {
            assert_eq!(view.shape(), [3, 224, 224], "{name}");
            let want = decode_f32(view.dtype(), view.data()).unwrap();
            let got = preprocess(&read(&images().join(&name)).unwrap(), 224, false);
            let differences: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
            let largest = differences.iter().copied().fold(0.0f32, f32::max);
            let mean = differences.iter().sum::<f32>() / differences.len() as f32;
            eprintln!("{name}: max |difference| {largest:e}, mean {mean:e}");
            if name.ends_with(".jpg") {
                assert!(mean <= 1e-2 && largest <= 0.1, "{name}: {mean} {largest}");
            } else {
                assert!(largest <= 1e-2, "{name}: {largest}");
            }
        }
    }

    #[test]
    fn bgr_reverses_the_normalized_channels() {
        let image = read(&images().join("landscape.png")).unwrap();
        let rgb = preprocess(&image, 224, false);
        let bgr = preprocess(&image, 224, true);
        let plane = 224 * 224;
        assert_eq!(bgr[..plane], rgb[2 * plane..]);
        assert_eq!(bgr[2 * plane..], rgb[..plane]);
    }

    /// A 1×20,000 image resizes to 256×5,120,000 before the crop: computing only the crop
    /// keeps that to the input's height times the crop (the whole resize would need 3.9 GB).
    #[test]
    fn an_elongated_image_costs_only_its_crop() {
        let image = RgbImage::from_fn(1, 20_000, |_, y| image::Rgb([(y % 256) as u8, 7, 200]));
        let tensor = preprocess(&image, 224, false);
        assert_eq!(tensor.len(), 3 * 224 * 224);
        // One input column: every output column is that column's value, so rows are constant.
        let row = &tensor[..224];
        assert!(row.iter().all(|&v| v == row[0]), "{row:?}");
        assert!(tensor.iter().all(|v| v.is_finite()));
    }

    /// PIL's `convert("RGB")` pixels (tools/make_pixel_modes.py) for each pixel format PIL opens
    /// in a mode of its own, and for JPEGs of every structure: the lossless ones exactly; the
    /// JPEGs, whose DCT and chroma upsampling differ from libjpeg's, within 4 levels (measured:
    /// 3, and 1 for CMYK; a wrong CMYK conversion is off by tens, a scan decoded wrongly by more).
    #[test]
    fn every_pixel_format_decodes_as_pil_converts_it() {
        let modes = images().join("modes");
        let bytes = std::fs::read(modes.join("expected.safetensors")).unwrap();
        let expected = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut failures = Vec::new();
        for (name, view) in expected.tensors() {
            let image = read(&modes.join(&name)).unwrap();
            let (width, height) = image.dimensions();
            assert_eq!(view.shape(), [height as usize, width as usize, 3], "{name}");
            let differences: Vec<u8> = image
                .as_raw()
                .iter()
                .zip(view.data())
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let largest = differences.iter().copied().max().unwrap();
            let mean =
                differences.iter().map(|&d| f64::from(d)).sum::<f64>() / differences.len() as f64;
            eprintln!("{name}: largest difference {largest}, mean {mean:.3}");
            let tolerated = if name.ends_with(".jpg") { 4 } else { 0 };
            if largest > tolerated {
                failures.push(name);
            }
        }
        assert!(failures.is_empty(), "differ from PIL: {failures:?}");
    }

    /// zune-jpeg decoded a truncated JPEG, painting the rest gray; PIL refuses it, and every
    /// truncated image is refused here too, however little is missing. (PIL accepts a PNG cut
    /// inside its final chunks, after all the pixels; so does the decoder here.)
    #[test]
    fn truncated_images_are_errors() {
        for (name, missing) in [
            ("photo.jpg", &[2, 1, 100][..]),
            ("modes/progressive.jpg", &[2, 1, 100][..]),
            ("modes/restarts.jpg", &[2, 1, 100][..]),
            ("landscape.png", &[100][..]),
            ("square.webp", &[1, 100][..]),
        ] {
            let bytes = std::fs::read(images().join(name)).unwrap();
            assert!(decode(&bytes).is_ok(), "{name}");
            let cuts = [bytes.len() / 4, bytes.len() / 2]
                .into_iter()
                .chain(missing.iter().map(|m| bytes.len() - m));
            for cut in cuts {
                let outcome = decode(&bytes[..cut]).map(|_| "decoded");
                eprintln!("{name} cut at {cut}: {outcome:?}");
                assert!(
                    outcome.is_err_and(|error| error.to_string().ends_with(TRUNCATED)),
                    "{name} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn bytes_after_the_end_of_a_jpeg_are_allowed() {
        let mut bytes = std::fs::read(images().join("photo.jpg")).unwrap();
        let image = decode(&bytes).unwrap();
        bytes.extend(b"a camera's trailer \xFF\xD8");
        assert_eq!(decode(&bytes).unwrap(), image);
    }

    /// A JPEG whose header claims 65,535 × 65,535 pixels: refused before anything is decoded,
    /// with the size that would have been needed.
    #[test]
    fn a_decompression_bomb_is_refused_with_its_size() {
        let mut bytes = std::fs::read(images().join("photo.jpg")).unwrap();
        let frame = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline frame header");
        // Height, then width, after the marker, the length and the sample precision.
        bytes[frame + 5..frame + 9].copy_from_slice(&[0xFF; 4]);
        assert_eq!(
            decode(&bytes).unwrap_err().to_string(),
            "the image is 65535×65535 pixels, which take 12288 MiB decoded, more than the 512 \
             MiB allowed; scale it down first"
        );
    }

    #[test]
    fn undecodable_bytes_are_errors() {
        assert_eq!(decode(b"").unwrap_err().to_string(), "the file is empty");
        assert_eq!(
            decode(b"not an image").unwrap_err().to_string(),
            "the file is not a JPEG, PNG or WebP image (told by its content, not its name)"
        );
        assert!(decode(b"\x89PNG\r\n\x1a\n truncated").is_err());
    }

    #[test]
    fn resize_keeps_the_aspect_ratio_like_torchvision() {
        assert_eq!(resized(320, 240), (341, 256));
        assert_eq!(resized(200, 300), (256, 384));
        assert_eq!(resized(500, 375), (341, 256));
        assert_eq!(crop_offset(341, 224), 58); // 58.5 rounds to even
        assert_eq!(crop_offset(256, 224), 16);
    }
}
