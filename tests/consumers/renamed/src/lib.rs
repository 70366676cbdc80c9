//! An application's view of `regnet`, depended on as `rn`: its own `regnet!` type, a zoo type,
//! weights from bytes, from a reader and from a PyTorch `.pth`, and a real image file
//! preprocessed, all through the renamed crate.

rn::regnet!(pub TinyY = "../../fixtures/tv_y/spec.yaml");

/// The fixture's weights, compiled into the binary.
pub const WEIGHTS: &[u8] = include_bytes!("../../../fixtures/tv_y/model.safetensors");

#[cfg(test)]
mod tests {
    use super::{TinyY, WEIGHTS};
    use rn::runtime::Options;
    use rn::zoo::RegNetY200MF;

    fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
        let tensors = safetensors::SafeTensors::deserialize(bytes).unwrap();
        let view = tensors.tensor(name).unwrap();
        rn::runtime::weights::decode_f32(view.dtype(), view.data()).unwrap()
    }

    #[test]
    fn weights_from_bytes_a_reader_and_a_pth_give_pytorchs_logits() {
        let input = tensor(
            include_bytes!("../../../fixtures/tv_y/input.safetensors"),
            "input",
        );
        let expected = tensor(
            include_bytes!("../../../fixtures/tv_y/expected.safetensors"),
            "logits",
        );
        let images = input.len() / TinyY::INPUT_SHAPE.iter().product::<usize>();
        let pth = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tv_y/model.pth");
        for model in [
            TinyY::from_bytes(WEIGHTS).unwrap(),
            TinyY::from_reader(std::io::Cursor::new(WEIGHTS)).unwrap(),
            // Saved by PyTorch's torch.save (tools/make_pth_fixtures.py), from a path and bytes.
            TinyY::load(pth).unwrap(),
            TinyY::from_bytes(&std::fs::read(pth).unwrap()).unwrap(),
        ] {
            let mut workspace = TinyY::workspace(images).unwrap();
            let logits = model.forward_slice(&input, &mut workspace).unwrap();
            let worst = logits
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-5, "max |difference| {worst}");
        }
    }

    #[test]
    fn a_zoo_type_runs_through_the_renamed_crate() {
        assert_eq!(RegNetY200MF::NAME, "RegNetY-200MF");
        assert_eq!(RegNetY200MF::FLOPS, 199_519_076);
        let model = RegNetY200MF::random(1).unwrap();
        let options = Options {
            threads: 1,
            ..Options::default()
        };
        let mut workspace = RegNetY200MF::workspace_with(1, options).unwrap();
        let images = vec![[[[0.25f32; 224]; 224]; 3]];
        let logits = model.forward(&images, &mut workspace).unwrap();
        assert!(logits[0].iter().all(|v| v.is_finite()));
        assert!(format!("{model:?}").contains("RegNetY-200MF"));
    }

    /// A real PNG through `Images::push_file` is torchvision's tensor of it (made by
    /// `tools/make_images.py`), and a zoo model classifies the batch.
    #[test]
    fn a_real_image_file_becomes_torchvisions_tensor_and_runs() {
        let images = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../regnet-cli/tests/images"
        );
        let mut batch = rn::runtime::Images::<224>::new();
        batch.push_file(format!("{images}/landscape.png")).unwrap();
        let expected = std::fs::read(format!("{images}/expected.safetensors")).unwrap();
        let want = tensor(&expected, "landscape.png");
        let worst = batch
            .as_floats()
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(batch.len(), 1);
        assert!(worst <= 1e-2, "max |difference| {worst}");
        let error = batch
            .push_file(format!("{images}/no_such.png"))
            .unwrap_err();
        assert!(error.to_string().contains("no_such.png"), "{error}");
        assert_eq!(batch.len(), 1);

        let model = RegNetY200MF::random(2).unwrap();
        let mut workspace = RegNetY200MF::workspace(1).unwrap();
        let logits = model.forward(&batch, &mut workspace).unwrap();
        assert!(logits[0].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bytes_that_are_not_a_checkpoint_are_a_typed_error() {
        let error = TinyY::from_bytes(b"PK\x03\x04 not safetensors").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("(checkpoint in memory)"), "{message}");
    }
}
