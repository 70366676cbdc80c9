//! The design-space samplers: ranges, quantization, the shape of their distributions, the
//! AnyNetX constraints, determinism, and the filters.

use regnet_spec::sample::{
    ANYNET_DEPTH, ANYNET_STAGES, ANYNET_WIDTH, AnyNetParams, AnyNetSpace, BOTTLENECK_RATIOS, DEPTH,
    Filter, GROUP_WIDTH, RegNetParams, Rng, Space, W0, WA, WM, sample,
};
use regnet_spec::{Design, StageSpec};

fn draws(n: usize, seed: u64) -> Vec<RegNetParams> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| RegNetParams::sample(false, &mut rng))
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

fn anynet_draws(space: AnyNetSpace, n: usize, seed: u64) -> Vec<AnyNetParams> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| AnyNetParams::sample(space, &mut rng))
        .collect()
}

#[test]
fn anynetx_a_draws_each_stage_log_uniformly_and_independently() {
    let samples = anynet_draws(AnyNetSpace::A, 20_000, 4);
    for p in &samples {
        for i in 0..ANYNET_STAGES {
            assert!((1..=16).contains(&p.depths[i]), "{p:?}");
            assert!(
                p.widths[i] % 8 == 0 && (8..=1024).contains(&p.widths[i]),
                "{p:?}"
            );
            assert!(BOTTLENECK_RATIOS.contains(&p.bottleneck_ratios[i]), "{p:?}");
            assert!((1..=32).contains(&p.group_widths[i]), "{p:?}");
        }
    }
    // Each stage's marginal against pycls's log-uniform CDF (σ ≤ 0.0035 at n = 20,000). A
    // uniform depth would put 0.31, not 0.58, at or below 4.
    for stage in 0..ANYNET_STAGES {
        let of = |f: fn(&AnyNetParams, usize) -> u32| -> Vec<f64> {
            samples.iter().map(|p| f64::from(f(p, stage))).collect()
        };
        let (d, w, g) = (
            of(|p, i| p.depths[i]),
            of(|p, i| p.widths[i]),
            of(|p, i| p.group_widths[i]),
        );
        for (name, values, range, points) in [
            ("d", &d, ANYNET_DEPTH, [1.0, 2.0, 4.0, 10.0]),
            ("w", &w, ANYNET_WIDTH, [16.0, 64.0, 256.0, 800.0]),
            ("g", &g, GROUP_WIDTH, [1.0, 4.0, 8.0, 20.0]),
        ] {
            for at in points {
                let (got, want) = (fraction(values, at), log_uniform_cdf(range, at));
                assert!(
                    (got - want).abs() < 0.015,
                    "stage {stage} {name} ≤ {at}: {got}, log-uniform {want}"
                );
            }
        }
        for b in BOTTLENECK_RATIOS {
            let share = samples
                .iter()
                .filter(|p| p.bottleneck_ratios[stage] == b)
                .count() as f64
                / samples.len() as f64;
            assert!(
                (share - 1.0 / 3.0).abs() < 0.015,
                "stage {stage} b = {b}: {share}"
            );
        }
    }
    // Independent stages: stage 1 and 2 widths equal about as often as chance says
    // (Σ P(w)² ≈ 0.024 for this log-uniform), not always as in a shared draw.
    let equal = samples
        .iter()
        .filter(|p| p.widths[0] == p.widths[1])
        .count();
    assert!(equal < samples.len() / 20, "{equal} equal");
    let shared_b = samples
        .iter()
        .filter(|p| {
            p.bottleneck_ratios
                .iter()
                .all(|&b| b == p.bottleneck_ratios[0])
        })
        .count() as f64
        / samples.len() as f64;
    // Four independent thirds agree with probability 3 · (1/3)⁴ = 1/27.
    assert!((shared_b - 1.0 / 27.0).abs() < 0.01, "{shared_b}");
}

#[test]
fn each_anynetx_space_adds_its_constraint() {
    let spaces = [
        AnyNetSpace::A,
        AnyNetSpace::B,
        AnyNetSpace::C,
        AnyNetSpace::D,
        AnyNetSpace::E,
    ];
    for space in spaces {
        let samples = anynet_draws(space, 5_000, 5);
        let all = |f: &dyn Fn(&AnyNetParams) -> bool| samples.iter().all(f);
        let shared = |v: &[u32; ANYNET_STAGES]| v.iter().all(|&x| x == v[0]);
        let sorted = |v: &[u32; ANYNET_STAGES]| v.windows(2).all(|w| w[0] <= w[1]);
        // Each constraint holds exactly from its space on and is not an accident before it.
        let expect = [
            (
                space >= AnyNetSpace::B,
                all(&|p| shared(&p.bottleneck_ratios)),
                "shared b",
            ),
            (
                space >= AnyNetSpace::C,
                all(&|p| shared(&p.group_widths)),
                "shared g",
            ),
            (
                space >= AnyNetSpace::D,
                all(&|p| sorted(&p.widths)),
                "increasing widths",
            ),
            (
                space >= AnyNetSpace::E,
                all(&|p| sorted(&p.depths)),
                "increasing depths",
            ),
        ];
        for (constrained, holds, what) in expect {
            assert_eq!(constrained, holds, "{}: {what}", space.name());
        }
    }
    // Sorting four independent draws: the narrowest stage of D is the minimum of four
    // log-uniform widths, P(min ≤ 64) = 1 − (1 − F(64))⁴.
    let d = anynet_draws(AnyNetSpace::D, 20_000, 6);
    let first: Vec<f64> = d.iter().map(|p| f64::from(p.widths[0])).collect();
    let f = log_uniform_cdf(ANYNET_WIDTH, 64.0);
    let want = 1.0 - (1.0 - f).powi(4);
    let got = fraction(&first, 64.0);
    assert!(
        (got - want).abs() < 0.015,
        "min width ≤ 64: {got}, want {want}"
    );
}

#[test]
fn kept_anynet_samples_are_valid_networks_with_the_drawn_stages() {
    let filter = Filter {
        flops: Some((380_000_000, 420_000_000)),
        stages: None,
    };
    for space in [AnyNetSpace::A, AnyNetSpace::E] {
        let (kept, drawn) = sample(Space::AnyNetX(space), 10, filter, 7, 200_000);
        assert_eq!(
            kept.len(),
            10,
            "{}: {} in {drawn} draws",
            space.name(),
            kept.len()
        );
        for s in &kept {
            let Design::Stages(stages) = &s.network.spec.design else {
                panic!("{} is not in the per-stage form", s.name);
            };
            assert_eq!(stages.len(), ANYNET_STAGES);
            for (given, built) in stages.iter().zip(&s.network.stages) {
                let StageSpec {
                    depth,
                    width,
                    group_width,
                    bottleneck_ratio,
                } = *given;
                assert_eq!(built.depth, depth as usize);
                assert_eq!(built.width, width as usize);
                assert_eq!(
                    built.bottleneck_width,
                    (f64::from(width) / bottleneck_ratio) as usize
                );
                assert_eq!(
                    built.group_width,
                    (group_width as usize).min(built.bottleneck_width)
                );
                assert_eq!(built.bottleneck_width % built.group_width, 0);
            }
            let flops = s.network.complexity.flops;
            assert!((380_000_000..=420_000_000).contains(&flops));
            assert_eq!(
                regnet_spec::compile_str(&s.yaml, &s.name).unwrap(),
                s.network
            );
        }
    }
}
