//! Images to network inputs exactly as torchvision's evaluation transform makes them from a
//! PIL image: `Resize(256)` (PIL's antialiased bilinear, 8-bit between its two passes),
//! `CenterCrop(R)`, `ToTensor()`, `Normalize(ImageNet mean, std)`; and [`Images`], a batch of
//! them on the heap that a model's `forward` takes. Feature `image` (the `image` crate decodes
//! JPEG, PNG and WebP); without it, [`Images`] holds tensors made elsewhere.

use std::ops::{Deref, DerefMut};
#[cfg(feature = "image")]
use std::path::Path;

#[cfg(feature = "image")]
use image::DynamicImage;
use regnet_spec::INPUT_CHANNELS;

use crate::Image;
use crate::error::RunError;

#[cfg(feature = "image")]
mod transform;
#[cfg(feature = "image")]
use transform::to_rgb8_as_pil;
#[cfg(feature = "image")]
pub use transform::{MAX_DECODED_BYTES, MAX_FILE_BYTES, RESIZE, decode, preprocess, read};

/// A batch of `R`×`R` RGB images, NCHW f32, on the heap (one 224×224 image is 602 KB, too much
/// for a thread's stack in a debug build). It dereferences to `[Image<R, R>]`, what a model's
/// `forward` takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Images<const R: usize> {
    floats: Vec<f32>,
}

impl<const R: usize> Images<R> {
    /// Floats per image: 3 × R × R.
    pub const FLOATS_PER_IMAGE: usize = INPUT_CHANNELS * R * R;

    /// An empty batch.
    pub fn new() -> Self {
        Images { floats: Vec::new() }
    }

    /// `count` images of zeros, allocated zeroed (no large value on the stack).
    pub fn zeroed(count: usize) -> Self {
        Images {
            floats: vec![0.0; count * Self::FLOATS_PER_IMAGE],
        }
    }

    /// Appends one image given as CHW floats (already normalized); an error, and nothing
    /// appended, unless there are exactly [`Images::FLOATS_PER_IMAGE`] of them.
    pub fn push_chw(&mut self, chw: &[f32]) -> Result<(), RunError> {
        if chw.len() != Self::FLOATS_PER_IMAGE {
            return Err(RunError::InputLength {
                name: "Images",
                floats: chw.len(),
                channels: INPUT_CHANNELS,
                size: R,
                per_image: Self::FLOATS_PER_IMAGE,
            });
        }
        self.floats.extend_from_slice(chw);
        Ok(())
    }

    /// Appends `image` as torchvision's evaluation transform makes it (see the module).
    #[cfg(feature = "image")]
    pub fn push_image(&mut self, image: &DynamicImage) {
        let rgb = to_rgb8_as_pil(image, false);
        self.floats.extend(preprocess(&rgb, R, false));
    }

    /// Reads, decodes and appends the image file at `path` (JPEG, PNG or WebP), as PIL opens it
    /// and torchvision transforms it; nothing is appended on an error.
    #[cfg(feature = "image")]
    pub fn push_file(&mut self, path: impl AsRef<Path>) -> Result<(), ImageError> {
        let image = read(path.as_ref())?;
        self.floats.extend(preprocess(&image, R, false));
        Ok(())
    }

    /// The images as one NCHW slice, what `forward_slice` takes.
    pub fn as_floats(&self) -> &[f32] {
        &self.floats
    }
}

impl<const R: usize> Deref for Images<R> {
    type Target = [Image<R, R>];

    fn deref(&self) -> &[Image<R, R>] {
        let rows = self.floats.as_chunks::<R>().0;
        rows.as_chunks::<R>().0.as_chunks::<INPUT_CHANNELS>().0
    }
}

impl<const R: usize> DerefMut for Images<R> {
    fn deref_mut(&mut self) -> &mut [Image<R, R>] {
        let rows = self.floats.as_chunks_mut::<R>().0;
        rows.as_chunks_mut::<R>()
            .0
            .as_chunks_mut::<INPUT_CHANNELS>()
            .0
    }
}

/// Why an image could not become a network input.
#[cfg(feature = "image")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read: missing, not a regular file, or larger than
    /// [`MAX_FILE_BYTES`].
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The image's path.
        path: Box<Path>,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a whole JPEG, PNG or WebP image this crate decodes, or one too large
    /// to decode; the reason says which and what to do.
    #[error("{reason}")]
    Decode {
        /// What is wrong with the data.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Images;
    use crate::error::RunError;

    #[test]
    fn a_batch_is_its_images_and_refuses_a_wrong_length() {
        let mut batch = Images::<4>::zeroed(2);
        assert_eq!(batch.len(), 2);
        batch[1][2][3][1] = 7.0;
        assert_eq!(batch.as_floats()[48 + 2 * 16 + 3 * 4 + 1], 7.0);
        let error = batch.push_chw(&[0.0; 47]).unwrap_err();
        assert!(matches!(
            error,
            RunError::InputLength {
                floats: 47,
                per_image: 48,
                ..
            }
        ));
        assert_eq!(batch.len(), 2);
        batch.push_chw(&[1.0; 48]).unwrap();
        assert_eq!(batch.len(), 3);
        assert!(
            batch[2]
                .as_flattened()
                .as_flattened()
                .iter()
                .all(|&v| v == 1.0)
        );
    }
}
