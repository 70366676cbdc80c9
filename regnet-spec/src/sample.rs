//! Sampling the paper's RegNet design spaces (§4): d < 64, w0 and wa < 256, 1.5 ≤ wm ≤ 3, and
//! one bottleneck ratio b ∈ {1, 2, 4} and group width g ∈ {1, …, 32} shared by all stages (as
//! AnyNetX_E), without (RegNetX) or with squeeze-excitation (RegNetY). Continuous parameters
//! are sampled log-uniformly and quantized as pycls's sweep sampler does
//! (`pycls/sweep/random.py`); depth uniformly. Deterministic for a seed, on every platform.

use crate::network::{Network, compile_str};

/// A small, fast, well-tested generator (xoshiro256**, seeded through SplitMix64) whose stream
/// is fixed by its definition, so a seed gives the same samples in every release.
#[derive(Clone, Debug)]
pub struct Rng([u64; 4]);

impl Rng {
    /// Seeds the four state words with successive SplitMix64 outputs, so every seed (0 included)
    /// gives a valid, non-zero state.
    pub fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut split_mix = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([split_mix(), split_mix(), split_mix(), split_mix()])
    }

    /// The next 64 random bits (the xoshiro256** output function, then a state step).
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [low, high].
    pub fn integer(&mut self, low: u64, high: u64) -> u64 {
        low + (self.unit() * (high - low + 1) as f64) as u64
    }

    /// pycls's `log_uniform(low, high, q)`: log-uniform in (low − min(q, low/2), high], then up
    /// to a multiple of q, so every multiple of q in [low, high] is reachable and the CDF is
    /// log-linear.
    pub fn log_uniform(&mut self, low: f64, high: f64, q: f64) -> f64 {
        let floor = (low - q.min(low / 2.0)).ln();
        let value = (floor + self.unit() * (high.ln() - floor)).exp();
        // Snap before ceil: 0.1 steps are not exact in binary.
        let steps = value / q;
        let steps = if (steps - steps.round()).abs() < 1e-9 {
            steps.round()
        } else {
            steps.ceil()
        };
        let quantized = steps * q;
        // Decimal places of q, so 0.1-steps print as 12.3, not 12.300000000000001.
        let places = (-q.log10()).ceil().max(0.0) as i32;
        let scale = 10f64.powi(places);
        ((quantized * scale).round() / scale).clamp(low, high)
    }
}

/// The paper's RegNet design space, X (no SE) or Y (SE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Residual bottleneck blocks without squeeze-excitation.
    RegNetX,
    /// RegNetX plus squeeze-excitation in every block (SE ratio 0.25 of the block input width).
    RegNetY,
}

/// One sampled point of a RegNet space: the spec's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RegNetParams {
    /// Total number of blocks, uniform in [`DEPTH`].
    pub d: u32,
    /// Initial width in channels, a multiple of 8 from [`W0`].
    pub w0: u32,
    /// Width slope in channels per block, a multiple of 0.1 from [`WA`].
    pub wa: f64,
    /// Width multiplier between stages, a multiple of 0.001 from [`WM`].
    pub wm: f64,
    /// Group width in channels, from [`GROUP_WIDTH`].
    pub g: u32,
    /// The paper's bottleneck ratio (bottleneck width = width / b), one of [`BOTTLENECK_RATIOS`].
    pub b: u32,
    /// Squeeze-excitation: `true` for [`Space::RegNetY`].
    pub se: bool,
}

/// The ranges sampled (§4 of the paper). Depth: inclusive `(low, high)` bounds of `d`, drawn
/// uniformly (the paper's d < 64).
pub const DEPTH: (u64, u64) = (1, 63);
/// `(low, high, quantum)` of `w0`, drawn log-uniformly: multiples of 8 up to 248 (the paper's
/// w0 < 256; pycls requires w0 % 8 == 0).
pub const W0: (f64, f64, f64) = (8.0, 248.0, 8.0);
/// `(low, high, quantum)` of `wa`, drawn log-uniformly in 0.1 steps (the paper's wa < 256).
pub const WA: (f64, f64, f64) = (0.1, 255.9, 0.1);
/// `(low, high, quantum)` of `wm`, drawn log-uniformly in 0.001 steps (the paper's 1.5 ≤ wm ≤ 3).
pub const WM: (f64, f64, f64) = (1.5, 3.0, 0.001);
/// `(low, high, quantum)` of the group width `g`, drawn log-uniformly over the integers 1..=32.
pub const GROUP_WIDTH: (f64, f64, f64) = (1.0, 32.0, 1.0);
/// The paper's bottleneck ratios b (bottleneck width = width / b), drawn uniformly.
pub const BOTTLENECK_RATIOS: [u32; 3] = [1, 2, 4];

impl RegNetParams {
    /// Draws one point of `space`: d, w0, wa, wm, g, then b, in that order, so a seed always gives
    /// the same points.
    pub fn sample(space: Space, rng: &mut Rng) -> Self {
        RegNetParams {
            d: rng.integer(DEPTH.0, DEPTH.1) as u32,
            w0: rng.log_uniform(W0.0, W0.1, W0.2) as u32,
            wa: rng.log_uniform(WA.0, WA.1, WA.2),
            wm: rng.log_uniform(WM.0, WM.1, WM.2),
            g: rng.log_uniform(GROUP_WIDTH.0, GROUP_WIDTH.1, GROUP_WIDTH.2) as u32,
            b: BOTTLENECK_RATIOS[rng.integer(0, 2) as usize],
            se: space == Space::RegNetY,
        }
    }

    /// The point as a spec file.
    pub fn to_yaml(&self, name: &str) -> String {
        format!(
            "# Sampled from the {} design space by `regnet sample`.\nname: {name}\nd: {}\nw0: {}\nwa: {}\nwm: {}\ng: {}\nb: {}\nse: {}\n",
            if self.se { "RegNetY" } else { "RegNetX" },
            self.d,
            self.w0,
            self.wa,
            self.wm,
            self.g,
            self.b,
            self.se
        )
    }
}

/// Which sampled networks to keep.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Inclusive range of flops (pycls multiply-adds for one image); `None` keeps any.
    pub flops: Option<(u64, u64)>,
    /// Exact number of stages (the zoo and timm have 4); `None` keeps any.
    pub stages: Option<usize>,
}

/// A kept sample: its parameters, its spec file and the compiled network.
#[derive(Clone, Debug)]
pub struct Sample {
    /// `sample_NNNN`, numbered from 0 in the order kept; the spec's `name` and its error origin.
    pub name: String,
    /// The sampled point.
    pub params: RegNetParams,
    /// The spec file, as [`RegNetParams::to_yaml`] writes it.
    pub yaml: String,
    /// The network compiled from `yaml`.
    pub network: Network,
}

/// Draws points until `count` pass the filter (each compiled from its own YAML, exactly as
/// `regnet!` would compile it); gives up after `attempts` draws, returning what it found and
/// the number of draws made.
pub fn sample(
    space: Space,
    count: usize,
    filter: Filter,
    seed: u64,
    attempts: usize,
) -> (Vec<Sample>, usize) {
    let mut rng = Rng::new(seed);
    let mut kept = Vec::with_capacity(count);
    let mut drawn = 0;
    while kept.len() < count && drawn < attempts {
        drawn += 1;
        let params = RegNetParams::sample(space, &mut rng);
        let name = format!("sample_{:04}", kept.len());
        let yaml = params.to_yaml(&name);
        // A point the spec rules reject (possible at the edges of the space) is skipped.
        let Ok(network) = compile_str(&yaml, &name) else {
            continue;
        };
        let flops = network.complexity.flops;
        if filter
            .flops
            .is_some_and(|(low, high)| !(low..=high).contains(&flops))
            || filter
                .stages
                .is_some_and(|stages| network.stages.len() != stages)
        {
            continue;
        }
        kept.push(Sample {
            name,
            params,
            yaml,
            network,
        });
    }
    (kept, drawn)
}
