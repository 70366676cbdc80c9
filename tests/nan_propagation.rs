//! NaN and infinities in the input reach the logits as they do in PyTorch: a single NaN pixel
//! makes every logit of its image NaN (convolutions spread it, global pooling hands it to every
//! channel, the classifier to every class), an infinite pixel makes them non-finite, and neither
//! touches the other images of the batch. On every instruction set, thread count and schedule.

use regnet::runtime::{Network, Options, Workspace};

// Only the fixture reader is used here, not the parity checks.
#[allow(dead_code, unused_macros, unused_imports)]
mod common;
mod settings;

regnet::regnet!(TinyY = "tests/fixtures/timm_y/spec.yaml");
regnet::regnet!(TinyX = "tests/fixtures/pycls_x/spec.yaml");

/// The images of one batch: what is wrong with each, and where.
const NAN_PIXEL: usize = 0;
const CLEAN: usize = 1;
const POSITIVE_INFINITY_PIXEL: usize = 2;
const NEGATIVE_INFINITY_PIXEL: usize = 3;
const ALL_NAN: usize = 4;
const IMAGES: usize = 5;

fn check(name: &str, network: &Network, fixture: &str) {
    let size = network.architecture().resolution;
    let plane = size * size;
    let image = 3 * plane;
    let classes = network.architecture().num_classes;
    let input_path = format!(
        "{}/tests/fixtures/{fixture}/input.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let clean = common::tensor(input_path.as_ref(), "input").0[..image].to_vec();

    let mut input: Vec<f32> = clean.iter().copied().cycle().take(IMAGES * image).collect();
    // A corner pixel of one channel, and the opposite corner: the stem reads both through its
    // zero padding.
    input[NAN_PIXEL * image + plane] = f32::NAN;
    input[POSITIVE_INFINITY_PIXEL * image + plane - 1] = f32::INFINITY;
    input[NEGATIVE_INFINITY_PIXEL * image + 2 * plane + size / 2] = f32::NEG_INFINITY;
    input[ALL_NAN * image..(ALL_NAN + 1) * image].fill(f32::NAN);

    for options in settings::every(&[1, 2]) {
        let Options {
            threads, features, ..
        } = options;
        let mut workspace =
            Workspace::with_options(network.architecture(), IMAGES, options).unwrap();
        let isa = workspace.options().isa;
        let logits = if features {
            network
                .forward_features(&input, &mut workspace)
                .unwrap()
                .0
                .to_vec()
        } else {
            network.forward(&input, &mut workspace).unwrap().to_vec()
        };
        let at = format!("{name} on {isa:?}, {threads} threads, features {features}");
        let of = |n: usize| &logits[n * classes..(n + 1) * classes];
        for n in [NAN_PIXEL, ALL_NAN] {
            assert!(
                of(n).iter().all(|v| v.is_nan()),
                "{at}: image {n}: {:?}",
                of(n)
            );
        }
        for n in [POSITIVE_INFINITY_PIXEL, NEGATIVE_INFINITY_PIXEL] {
            assert!(
                of(n).iter().all(|v| !v.is_finite()),
                "{at}: image {n}: {:?}",
                of(n)
            );
        }
        assert!(
            of(CLEAN).iter().all(|v| v.is_finite()),
            "{at}: clean image: {:?}",
            of(CLEAN)
        );
    }
}

#[test]
fn nan_and_infinity_reach_every_logit_of_their_image_only_with_se() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/timm_y/model.safetensors"
    );
    check("TinyY", TinyY::load(path).unwrap().network(), "timm_y");
}

#[test]
fn nan_and_infinity_reach_every_logit_of_their_image_only_without_se() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pycls_x/model.safetensors"
    );
    check("TinyX", TinyX::load(path).unwrap().network(), "pycls_x");
}
