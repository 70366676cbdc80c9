//! Sampling the paper's design spaces. AnyNetX_A to AnyNetX_E (§3.1–3.2): four stages, each
//! with depth d_i ≤ 16, width w_i ≤ 1024 in multiples of 8, bottleneck ratio b_i ∈ {1, 2, 4}
//! and group width g_i ∈ {1, …, 32}, all log-uniform; B shares b, C also shares g, D adds
//! w_{i+1} ≥ w_i and E also d_{i+1} ≥ d_i. RegNet (§4): d < 64, w0 and wa < 256, 1.5 ≤ wm ≤ 3,
//! and one b ∈ {1, 2, 4} and g ∈ {1, …, 32} for all stages (as AnyNetX_E), without (RegNetX) or
//! with squeeze-excitation (RegNetY); continuous parameters log-uniform and quantized as pycls's
//! sweep sampler does (`pycls/sweep/random.py`), depth uniform. Deterministic for a seed, on
//! every platform.

use crate::compiled::{CompiledSpec, compile_str};

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

/// A design space of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// AnyNetX_A to AnyNetX_E: four explicit stages, sampled as the spec's per-stage form.
    AnyNetX(AnyNetSpace),
    /// Residual bottleneck blocks without squeeze-excitation.
    RegNetX,
    /// RegNetX plus squeeze-excitation in every block (SE ratio 0.25 of the block input width).
    RegNetY,
}

/// The AnyNetX spaces, each adding one constraint to the one before (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnyNetSpace {
    /// Every stage's d, w, b and g drawn independently.
    A,
    /// One bottleneck ratio b for all stages.
    B,
    /// B and one group width g for all stages.
    C,
    /// C and widths that never decrease: w_{i+1} ≥ w_i.
    D,
    /// D and depths that never decrease: d_{i+1} ≥ d_i.
    E,
}

impl AnyNetSpace {
    /// The paper's name, `AnyNetX_A` to `AnyNetX_E`.
    pub fn name(self) -> &'static str {
        match self {
            AnyNetSpace::A => "AnyNetX_A",
            AnyNetSpace::B => "AnyNetX_B",
            AnyNetSpace::C => "AnyNetX_C",
            AnyNetSpace::D => "AnyNetX_D",
            AnyNetSpace::E => "AnyNetX_E",
        }
    }
}

/// Stages of an AnyNetX network.
pub const ANYNET_STAGES: usize = 4;
/// `(low, high, quantum)` of each stage's depth, drawn log-uniformly (the paper's d_i ≤ 16).
pub const ANYNET_DEPTH: (f64, f64, f64) = (1.0, 16.0, 1.0);
/// `(low, high, quantum)` of each stage's width, drawn log-uniformly (the paper's w_i ≤ 1024,
/// divisible by 8).
pub const ANYNET_WIDTH: (f64, f64, f64) = (8.0, 1024.0, 8.0);

/// One sampled point of an AnyNetX space: per-stage depth, width, bottleneck ratio and group
/// width, written as a spec in the per-stage form.
#[derive(Clone, Debug, PartialEq)]
pub struct AnyNetParams {
    /// Blocks per stage, from [`ANYNET_DEPTH`].
    pub depths: [u32; ANYNET_STAGES],
    /// Stage widths in channels, from [`ANYNET_WIDTH`].
    pub widths: [u32; ANYNET_STAGES],
    /// The paper's bottleneck ratios (bottleneck width = width / b), from [`BOTTLENECK_RATIOS`].
    pub bottleneck_ratios: [u32; ANYNET_STAGES],
    /// Group widths in channels, from [`GROUP_WIDTH`].
    pub group_widths: [u32; ANYNET_STAGES],
}

impl AnyNetParams {
    /// Draws the depths, then the widths, then the bottleneck ratios (one when shared), then
    /// the group widths (one when shared); D and E sort the widths and depths drawn, which gives
    /// exactly the distribution of independent draws conditioned on their order (up to ties).
    /// The group width may not divide a stage's bottleneck width: such a point is not a valid
    /// network and [`sample`] skips it, as the paper keeps only valid models.
    pub fn sample(space: AnyNetSpace, rng: &mut Rng) -> Self {
        let mut log_uniform =
            |(low, high, q): (f64, f64, f64)| rng.log_uniform(low, high, q) as u32;
        let mut depths = [0; ANYNET_STAGES].map(|_| log_uniform(ANYNET_DEPTH));
        let mut widths = [0; ANYNET_STAGES].map(|_| log_uniform(ANYNET_WIDTH));
        let bottleneck_ratios = shared_or_not(space >= AnyNetSpace::B, || {
            BOTTLENECK_RATIOS[rng.integer(0, 2) as usize]
        });
        let group_widths = shared_or_not(space >= AnyNetSpace::C, || {
            rng.log_uniform(GROUP_WIDTH.0, GROUP_WIDTH.1, GROUP_WIDTH.2) as u32
        });
        if space >= AnyNetSpace::D {
            widths.sort_unstable();
        }
        if space >= AnyNetSpace::E {
            depths.sort_unstable();
        }
        AnyNetParams {
            depths,
            widths,
            bottleneck_ratios,
            group_widths,
        }
    }

    /// The point as a spec file in the per-stage form.
    pub fn to_yaml(&self, space: AnyNetSpace, name: &str) -> String {
        let list = |values: &[u32]| {
            values
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "# Sampled from the {} design space by `regnet sample`.\nname: {name}\n\
             depths: [{}]\nwidths: [{}]\ngroup_widths: [{}]\nbottleneck_ratios: [{}]\n",
            space.name(),
            list(&self.depths),
            list(&self.widths),
            list(&self.group_widths),
            list(&self.bottleneck_ratios),
        )
    }
}

/// One value drawn for all stages, or one per stage.
fn shared_or_not(shared: bool, mut draw: impl FnMut() -> u32) -> [u32; ANYNET_STAGES] {
    if shared {
        [draw(); ANYNET_STAGES]
    } else {
        [0; ANYNET_STAGES].map(|_| draw())
    }
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
    /// Squeeze-excitation: `true` in RegNetY.
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
    /// Draws one point of RegNetX (`se: false`) or RegNetY (`se: true`): d, w0, wa, wm, g, then
    /// b, in that order, so a seed always gives the same points.
    pub fn sample(se: bool, rng: &mut Rng) -> Self {
        RegNetParams {
            d: rng.integer(DEPTH.0, DEPTH.1) as u32,
            w0: rng.log_uniform(W0.0, W0.1, W0.2) as u32,
            wa: rng.log_uniform(WA.0, WA.1, WA.2),
            wm: rng.log_uniform(WM.0, WM.1, WM.2),
            g: rng.log_uniform(GROUP_WIDTH.0, GROUP_WIDTH.1, GROUP_WIDTH.2) as u32,
            b: BOTTLENECK_RATIOS[rng.integer(0, 2) as usize],
            se,
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

/// A kept sample: its spec file and the network compiled from it (whose `spec` holds the
/// sampled parameters).
#[derive(Clone, Debug)]
pub struct Sample {
    /// `sample_NNNN`, numbered from 0 in the order kept; the spec's `name` and its error origin.
    pub name: String,
    /// The spec file, as [`RegNetParams::to_yaml`] or [`AnyNetParams::to_yaml`] writes it.
    pub yaml: String,
    /// The network compiled from `yaml`.
    pub network: CompiledSpec,
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
    let mut sampler = Sampler::new(space, filter, seed);
    // Grown as samples are kept: `count` is a bound, not a size to allocate up front.
    let mut kept = Vec::new();
    while kept.len() < count && sampler.drawn() < attempts {
        kept.extend(sampler.draw());
    }
    (kept, sampler.drawn())
}

/// The draws of [`sample`] one at a time, for callers that use each sample as it is kept
/// instead of holding them all.
#[derive(Clone, Debug)]
pub struct Sampler {
    space: Space,
    filter: Filter,
    rng: Rng,
    drawn: usize,
    kept: usize,
}

impl Sampler {
    /// A sampler whose draws are those of [`sample`] with the same arguments.
    pub fn new(space: Space, filter: Filter, seed: u64) -> Self {
        Sampler {
            space,
            filter,
            rng: Rng::new(seed),
            drawn: 0,
            kept: 0,
        }
    }

    /// The draws made so far.
    pub fn drawn(&self) -> usize {
        self.drawn
    }

    /// Draws one point: the sample if it is a valid network that passes the filter.
    pub fn draw(&mut self) -> Option<Sample> {
        self.drawn += 1;
        let name = format!("sample_{:04}", self.kept);
        let yaml = match self.space {
            Space::AnyNetX(space) => {
                AnyNetParams::sample(space, &mut self.rng).to_yaml(space, &name)
            }
            Space::RegNetX | Space::RegNetY => {
                RegNetParams::sample(self.space == Space::RegNetY, &mut self.rng).to_yaml(&name)
            }
        };
        // A point the spec rules reject (a group width that does not divide an AnyNet stage's
        // bottleneck, or the edges of the RegNet space) is not a valid network: skipped.
        let network = compile_str(&yaml, &name).ok()?;
        let flops = network.complexity.flops;
        if self
            .filter
            .flops
            .is_some_and(|(low, high)| !(low..=high).contains(&flops))
            || self
                .filter
                .stages
                .is_some_and(|stages| network.stages.len() != stages)
        {
            return None;
        }
        self.kept += 1;
        Some(Sample {
            name,
            yaml,
            network,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_beyond_the_attempts_is_not_allocated_up_front() {
        // Reserving room for `count` samples aborted the process (a 2^64-sample allocation).
        let (kept, drawn) = sample(Space::RegNetX, usize::MAX, Filter::default(), 0, 3);
        assert_eq!(drawn, 3);
        assert!(kept.len() <= 3);
    }
}
