//! Test inputs that differ from test to test but never from run to run.

/// `count` values in [-1, 1] from a xorshift sequence started at `seed` (not 0): cheap, and
/// different for every seed.
pub fn uniform(count: usize, seed: u32) -> Vec<f32> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}
