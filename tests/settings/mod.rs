//! The run settings a test goes through when its result must not depend on them.

use regnet::runtime::{Isa, Options};

/// Every instruction set asked for (a workspace takes the best this CPU has up to it), each of
/// `threads`, with and without kept features.
pub fn every(threads: &[usize]) -> impl Iterator<Item = Options> + '_ {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar]
        .into_iter()
        .flat_map(move |isa| {
            threads.iter().flat_map(move |&threads| {
                [false, true].map(|features| Options {
                    threads,
                    isa,
                    features,
                    ..Options::default()
                })
            })
        })
}
