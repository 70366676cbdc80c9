//! The whole user path: compile a spec into a type, load a checkpoint, run a batch.
//!
//!   cargo run --release --example forward                    # the small timm fixture in tests/
//!   cargo run --release --example forward -- W.safetensors  # RegNetY-1.6GF weights (torchvision,
//!                                                            # timm or pycls names)

use std::error::Error;
use std::process::ExitCode;

use regnet::runtime::Image;

regnet::regnet!("specs/regnety_1.6gf.yaml");
regnet::regnet!(TinyTimm = "tests/fixtures/timm_y/spec.yaml");

fn main() -> ExitCode {
    // Errors say what to do; print them as text, not as Debug.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1) {
        Some(weights) => {
            let model = RegNetY1_6GF::load(&weights)?;
            let mut workspace = RegNetY1_6GF::workspace(2)?;
            let images: Vec<Image<224, 224>> = vec![gradient(); 2];
            let logits = model.forward(&images, &mut workspace)?;
            report(RegNetY1_6GF::NAME, logits);
        }
        None => {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/timm_y/model.safetensors"
            );
            let model = TinyTimm::load(path)?;
            println!("loaded {path} ({:?} names)", model.network().scheme());
            let mut workspace = TinyTimm::workspace(2)?;
            let images: Vec<Image<32, 32>> = vec![gradient(); 2];
            let logits = model.forward(&images, &mut workspace)?;
            report(TinyTimm::NAME, logits);
        }
    }
    Ok(())
}

/// A smooth test image; real code would decode and normalize a photo.
fn gradient<const H: usize, const W: usize>() -> Image<H, W> {
    std::array::from_fn(|c| {
        std::array::from_fn(|y| std::array::from_fn(|x| (c + y + x) as f32 / (H + W) as f32 - 0.5))
    })
}

fn report<const N: usize>(name: &str, logits: &[[f32; N]]) {
    for (i, image) in logits.iter().enumerate() {
        let mut ranked: Vec<(usize, f32)> = image.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = ranked
            .iter()
            .take(5)
            .map(|(class, logit)| format!("{class}: {logit:.4}"))
            .collect();
        println!("{name}, image {i}: top-5 {}", top.join(", "));
    }
}
