//! Time of `regnet!`'s whole expansion (read, parse, validate, quantize, count, emit) per spec.
//! Run with `cargo bench -p regnet-codegen --bench expand [-- SPEC...]`.

use std::path::Path;
use std::time::{Duration, Instant};

use quote::quote;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let specs: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let specs = if specs.is_empty() {
        vec![
            "specs/regnetx_200mf.yaml".to_owned(),
            "specs/regnety_32gf.yaml".to_owned(),
            "specs/regnety_128gf.yaml".to_owned(),
        ]
    } else {
        specs
    };
    for spec in specs {
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let start = Instant::now();
                let tokens = regnet_codegen::expand(quote!(#spec), Some(&root), "regnet");
                // Turning the tokens into text is part of handing them to rustc.
                std::hint::black_box(tokens.to_string());
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{spec}: median {:.3} ms, max {:.3} ms over {} expansions",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            times.len()
        );
    }
}
