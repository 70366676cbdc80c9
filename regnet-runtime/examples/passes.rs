//! Runs forward passes of a spec's network on random weights, one image, one thread: the
//! program `bench/insn_count.sh` counts guest instructions of under qemu (its count with 1 pass
//! subtracted from its count with 1 + N gives N passes, without the set-up).
//!
//!     cargo run --release -p regnet-runtime --example passes -- SPEC.yaml scalar|neon|avx2 N

use regnet_runtime::{Isa, Network, Options, Workspace};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, spec, isa, passes] = arguments.as_slice() else {
        return Err("usage: passes SPEC.yaml scalar|neon|avx2|avx512 PASSES".into());
    };
    let isa = match isa.as_str() {
        "scalar" => Isa::Scalar,
        "neon" => Isa::Neon,
        "avx2" => Isa::Avx2Fma,
        "avx512" => Isa::Avx512,
        other => return Err(format!("unknown instruction set `{other}`").into()),
    };
    let passes: usize = passes.parse()?;
    // Networks take a `'static` architecture: the compiled spec lives as long as the program.
    let compiled = Box::leak(Box::new(regnet_spec::compile_file(
        std::path::Path::new(spec),
        spec,
    )?));
    let architecture = compiled.architecture(compiled.display_name("network"));
    let network = Network::random(architecture, 0)?;
    let options = Options {
        threads: 1,
        isa,
        ..Options::default()
    };
    let mut workspace = Workspace::with_options(&architecture, 1, options)?;
    let input = vec![0.5f32; 3 * architecture.resolution * architecture.resolution];
    for _ in 0..passes {
        std::hint::black_box(network.forward(&input, &mut workspace)?);
    }
    eprintln!("{passes} passes on {:?}", workspace.options().isa);
    Ok(())
}
