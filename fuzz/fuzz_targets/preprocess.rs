//! Image preprocessing on arbitrary bytes as an image file (first byte even) and on decoded
//! images of any size, aspect ratio and crop (first byte odd): every output is the crop's size
//! and finite.

#![no_main]

use arbitrary::{Result, Unstructured};
use image::RgbImage;
use libfuzzer_sys::fuzz_target;
use regnet_runtime::images::{decode, preprocess};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (image, crop) = if mode % 2 == 0 {
        match decode(rest) {
            Ok(image) => (image, 224),
            Err(_) => return,
        }
    } else {
        match any_image(&mut Unstructured::new(rest)) {
            Ok(drawn) => drawn,
            Err(_) => return,
        }
    };
    let tensor = preprocess(&image, crop, mode & 2 != 0);
    assert_eq!(tensor.len(), 3 * crop * crop);
    assert!(tensor.iter().all(|v| v.is_finite()));
});

/// An image of up to 2¹⁸ pixels in any shape (1×262,144 included), its pixels from the input,
/// and a crop of 1 to 512.
fn any_image(u: &mut Unstructured<'_>) -> Result<(RgbImage, usize)> {
    let width = u.int_in_range(1..=1u32 << 18)?;
    let height = u.int_in_range(1..=(1u32 << 18) / width)?;
    let crop = u.int_in_range(1..=512usize)?;
    let pixels = u
        .bytes(u.len().min(3 * (width * height) as usize))?
        .to_vec();
    let mut buffer = pixels;
    buffer.resize(3 * (width * height) as usize, 128);
    let image = RgbImage::from_raw(width, height, buffer).expect("the buffer fits the size");
    Ok((image, crop))
}
