//! The RegNet design-space sampler: ranges, quantization, the shape of its distributions,
//! determinism, and the filters.

use regnet_spec::sample::{
    BOTTLENECK_RATIOS, DEPTH, Filter, GROUP_WIDTH, RegNetParams, Rng, Space, W0, WA, WM, sample,
};

fn draws(n: usize, seed: u64) -> Vec<RegNetParams> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| RegNetParams::sample(Space::RegNetX, &mut rng))
        .collect()
}

#[test]
fn every_draw_is_inside_the_papers_ranges_and_quantized() {
    for p in draws(5000, 1) {
        assert!((DEPTH.0..=DEPTH.1).contains(&u64::from(p.d)), "{p:?}");
        assert!(p.w0 >= 8 && p.w0 < 256 && p.w0 % 8 == 0, "{p:?}");
        assert!(p.wa >= WA.0 && p.wa < 256.0, "{p:?}");
        assert!(
            ((p.wa * 10.0) - (p.wa * 10.0).round()).abs() < 1e-9,
            "wa in 0.1 steps: {p:?}"
        );
        assert!((WM.0..=WM.1).contains(&p.wm), "{p:?}");
        assert!(
            ((p.wm * 1000.0) - (p.wm * 1000.0).round()).abs() < 1e-6,
            "{p:?}"
        );
        assert!((1..=32).contains(&p.g), "{p:?}");
        assert!(BOTTLENECK_RATIOS.contains(&p.b), "{p:?}");
        assert!(!p.se);
    }
}

/// The fraction of draws at or below `split`.
fn fraction(values: &[f64], split: f64) -> f64 {
    values.iter().filter(|&&v| v <= split).count() as f64 / values.len() as f64
}

/// The sampler's CDF at `at` (a multiple of q): log-uniform over (low − min(q, low/2), high]
/// rounded up to multiples of q (pycls's `log_uniform`).
fn log_uniform_cdf((low, high, q): (f64, f64, f64), at: f64) -> f64 {
    let floor = low - q.min(low / 2.0);
    (at / floor).ln() / (high / floor).ln()
}

#[test]
fn continuous_parameters_are_log_uniform_and_depth_uniform() {
    let samples = draws(20_000, 2);
    let w0: Vec<f64> = samples.iter().map(|p| f64::from(p.w0)).collect();
    let wa: Vec<f64> = samples.iter().map(|p| p.wa).collect();
    let wm: Vec<f64> = samples.iter().map(|p| p.wm).collect();
    let g: Vec<f64> = samples.iter().map(|p| f64::from(p.g)).collect();
    // The empirical CDF at a few points of each range against the log-uniform one (a uniform
    // sampler would be far off: P(w0 ≤ 40) would be 0.13, not 0.56). Binomial σ at n = 20,000
    // is at most 0.0035; allow 0.015.
    for (name, values, range, points) in [
        ("w0", &w0, W0, [16.0, 40.0, 96.0, 200.0]),
        ("wa", &wa, WA, [1.0, 5.0, 50.0, 200.0]),
        ("wm", &wm, WM, [1.7, 2.0, 2.5, 2.9]),
        ("g", &g, GROUP_WIDTH, [1.0, 4.0, 8.0, 20.0]),
    ] {
        for at in points {
            let (got, want) = (fraction(values, at), log_uniform_cdf(range, at));
            assert!(
                (got - want).abs() < 0.015,
                "{name} ≤ {at}: {got}, log-uniform {want}"
            );
        }
    }
    for value in 1..=32 {
        assert!(g.contains(&f64::from(value)), "g = {value} never drawn");
    }
    // Depth uniform over 1..=63: mean 32, a quarter at or below 16.
    let d: Vec<f64> = samples.iter().map(|p| f64::from(p.d)).collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    assert!((mean - 32.0).abs() < 0.5, "mean depth {mean}");
    assert!((fraction(&d, 16.0) - 16.0 / 63.0).abs() < 0.015);
    // b: each of 1, 2, 4 a third of the time.
    for b in BOTTLENECK_RATIOS {
        let share = samples.iter().filter(|p| p.b == b).count() as f64 / samples.len() as f64;
        assert!((share - 1.0 / 3.0).abs() < 0.015, "b = {b}: {share}");
    }
}

#[test]
fn a_seed_gives_the_same_samples_and_another_seed_others() {
    assert_eq!(draws(50, 9), draws(50, 9));
    assert_ne!(draws(50, 9), draws(50, 10));
}

#[test]
fn filters_keep_only_networks_in_the_flops_range_with_the_stage_count() {
    let filter = Filter {
        flops: Some((380_000_000, 420_000_000)),
        stages: Some(4),
    };
    let (kept, drawn) = sample(Space::RegNetY, 10, filter, 3, 200_000);
    assert_eq!(kept.len(), 10, "found only {} in {drawn} draws", kept.len());
    for s in &kept {
        let flops = s.network.complexity.flops;
        assert!(
            (380_000_000..=420_000_000).contains(&flops),
            "{}: {flops}",
            s.name
        );
        assert_eq!(s.network.stages.len(), 4);
        assert!(s.network.spec.se);
        // The YAML written is the network kept: compiling it again gives the same network.
        let again = regnet_spec::compile_str(&s.yaml, &s.name).unwrap();
        assert_eq!(again, s.network);
    }
}
