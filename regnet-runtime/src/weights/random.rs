//! Deterministic stand-in weights for benchmarks, demos and tests, with the same statistics as
//! the shared fixtures' recipe so activations stay in a realistic range through deep networks.

use regnet_spec::Architecture;

use super::NetworkWeights;
use super::naming::{Role, Scheme, assemble};

impl NetworkWeights {
    /// Weights drawn from a fixed generator seeded with `seed`: the same architecture and seed
    /// give bit-identical weights on every platform (only additions, multiplications and square
    /// roots are used, which IEEE 754 rounds exactly).
    ///
    /// Convolutions and linear layers are uniform in ±½·√(6 / fan_in) (half of Kaiming-uniform,
    /// so the untrained residual sums do not grow stage after stage); BN weight is U(0.5, 1.5),
    /// bias and running mean 0.1·N(0, 1), running variance U(0.5, 2); linear biases 0.01·N(0, 1).
    pub fn random(architecture: &Architecture, seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        // Keys are irrelevant here; any scheme walks the same tensors in the same order.
        let Ok(weights) = assemble(architecture, Scheme::Pycls, |slot| {
            let len = slot.shape.iter().product();
            let values = (0..len)
                .map(|_| rng.sample(slot.role) as f32)
                .collect::<Vec<f32>>();
            Ok::<_, std::convert::Infallible>(values)
        });
        weights
    }
}

/// Steele, Lea and Flood's SplitMix64: tiny, fast, and good enough for weights that only need to
/// look random.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Approximately N(0, 1): the centred sum of four uniforms (Irwin–Hall) scaled to unit
    /// variance. Unlike Box–Muller it needs no `ln`/`cos`, whose last bit varies between libms,
    /// and it has no far outliers.
    fn normal(&mut self) -> f64 {
        let sum: f64 = (0..4).map(|_| self.unit()).sum();
        (sum - 2.0) * 3.0f64.sqrt()
    }

    fn sample(&mut self, role: Role) -> f64 {
        match role {
            Role::ConvWeight { fan_in } | Role::LinearWeight { fan_in } => {
                let bound = 0.5 * (6.0 / fan_in.max(1) as f64).sqrt();
                self.uniform(-bound, bound)
            }
            Role::BnWeight => self.uniform(0.5, 1.5),
            Role::BnBias | Role::BnMean => 0.1 * self.normal(),
            Role::BnVar => self.uniform(0.5, 2.0),
            Role::LinearBias => 0.01 * self.normal(),
        }
    }
}
