//! An image's logits do not depend on the batch it runs in: each of 8 images alone, and the
//! first n of them as one batch (n = 1 to 8), give the same bits, on every instruction set, with
//! 1, 2 and 3 threads, with and without kept features. A batch runs as groups of whole images
//! per thread, each image alone through the early stages and its group at once through the late
//! ones, plus a remainder split layer by layer over the threads (or, keeping features, all of it
//! layer by layer): every one of those schedules is reached here. A server that batches
//! requests relies on this.

use regnet::runtime::Options;

mod inputs;
mod settings;

regnet::regnet!(Net = "tests/fixtures/concurrency/regnety_200mf_96px.yaml");

const IMAGES: usize = 8;
const PIXELS: usize = 3 * 96 * 96;

#[test]
fn every_image_gets_the_bits_of_its_lone_run_in_every_batch() {
    let net = Net::random(5).unwrap();
    let input = inputs::uniform(IMAGES * PIXELS, 0x2545_f491);
    for options in settings::every(&[1, 2, 3]) {
        let Options {
            isa,
            threads,
            features,
            ..
        } = options;
        let mut workspace = Net::workspace_with(IMAGES, options).unwrap();
        let mut logits = |batch: &[f32]| -> Vec<u32> {
            let logits = if features {
                net.forward_features(batch, &mut workspace).unwrap().0
            } else {
                net.forward_slice(batch, &mut workspace).unwrap()
            };
            logits.iter().map(|v| v.to_bits()).collect()
        };
        let alone: Vec<Vec<u32>> = input.chunks_exact(PIXELS).map(&mut logits).collect();
        let classes = alone[0].len();
        for n in 1..=IMAGES {
            let batched = logits(&input[..n * PIXELS]);
            for (image, expected) in alone.iter().take(n).enumerate() {
                assert!(
                    batched[image * classes..(image + 1) * classes] == expected[..],
                    "{isa:?}, {threads} threads, features {features}: image {image} of a \
                     batch of {n} differs from its lone run"
                );
            }
        }
    }
}
