//! Images to network inputs exactly as torchvision's evaluation transform makes them from a
//! PIL image: `Resize(256)` (PIL's antialiased bilinear, 8-bit between its two passes),
//! `CenterCrop(224)`, `ToTensor()`, `Normalize(ImageNet mean, std)`.

use std::path::Path;

use image::RgbImage;

/// ImageNet's channel means and standard deviations, RGB.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The shorter side after resizing, before the centre crop.
pub const RESIZE: usize = 256;

/// Fixed-point bits of PIL's 8-bit resampling coefficients (`PRECISION_BITS` in Resample.c).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Reads an image file (JPEG, PNG, WebP) as 8-bit RGB; see [`decode`].
pub fn read(path: &Path) -> Result<RgbImage, String> {
    decode(&std::fs::read(path).map_err(|e| e.to_string())?)
}

/// Decodes an image (JPEG, PNG, WebP, told apart by content) as 8-bit RGB, as PIL's
/// `convert("RGB")` does: gray is replicated, alpha dropped. The `image` crate's default limits
/// apply (at most 512 MiB decoded), and an image without pixels is an error.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    let image = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .to_rgb8();
    if image.width() == 0 || image.height() == 0 {
        return Err(format!(
            "the image is {}×{} pixels; it has no pixels to classify",
            image.width(),
            image.height()
        ));
    }
    Ok(image)
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

    use super::*;

    fn images() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/images")
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
            let want: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
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

    #[test]
    fn undecodable_bytes_are_errors() {
        assert!(decode(b"").is_err());
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
