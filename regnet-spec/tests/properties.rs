//! Properties of random specs drawn from the paper's ranges (REFERENCE.md §2's sweep): d < 64,
//! w0 a multiple of 8 below 256, wa < 256, 1.5 ≤ wm ≤ 3, g in 1..=232, the paper's b in
//! {1, ½, ¼, 2, 4}, SE on or off, resolution 32..=512, pycls or torchvision compat.
//!
//! Everything the tests compare against is recomputed here from REFERENCE.md §1 (block widths,
//! complexity, node counts, spatial sizes), without calling the crate's own helpers.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::algo::is_cyclic_directed;
use petgraph::visit::EdgeRef;
use proptest::prelude::*;
use proptest::test_runner::Config;
use regnet_spec::graph::{self, Op};
use regnet_spec::{Architecture, Block, CompiledSpec, compile_str};

const PAPER_B: [f64; 5] = [1.0, 0.5, 0.25, 2.0, 4.0];
const STEM_WIDTH: usize = 32;
const NUM_CLASSES: usize = 1000;
const Q: f64 = 8.0;

#[derive(Clone, Debug)]
struct Params {
    d: u32,
    w0: u32,
    wa: f64,
    wm: f64,
    g: u32,
    /// The paper's b: bottleneck width = width / b.
    b: f64,
    se: bool,
    resolution: u32,
    torchvision: bool,
}

impl Params {
    fn yaml(&self) -> String {
        let mut yaml = format!(
            "d: {}\nw0: {}\nwa: {:?}\nwm: {:?}\ng: {}\nb: {:?}\nse: {}\nresolution: {}\n",
            self.d, self.w0, self.wa, self.wm, self.g, self.b, self.se, self.resolution
        );
        if self.torchvision {
            yaml.push_str("compat: torchvision\n");
        }
        yaml
    }

    /// pycls's BOT_MUL.
    fn multiplier(&self) -> f64 {
        1.0 / self.b
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        1u32..64,
        1u32..32,
        0.0f64..256.0,
        1.5f64..=3.0,
        1u32..=232,
        prop::sample::select(PAPER_B.to_vec()),
        any::<bool>(),
        32u32..=512,
        any::<bool>(),
    )
        .prop_map(
            |(d, w0, wa, wm, g, b, se, resolution, torchvision)| Params {
                d,
                w0: 8 * w0,
                wa,
                wm,
                g,
                b,
                se,
                resolution,
                torchvision,
            },
        )
}

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Compiles the spec. pycls's rule always yields a valid network in these ranges (its lcm step
/// makes the bottleneck width a multiple of the group width); torchvision's rule has no lcm, so
/// with b < 1 (multiplier 2 or 4) `int(w_b / m) · m` can differ from `w_b` and the crate rejects
/// the spec, as PyTorch would reject the grouped convolution. Those cases return `None`.
fn compile(p: &Params) -> Result<Option<CompiledSpec>, TestCaseError> {
    let source = p.yaml();
    match compile_str(&source, "random.yaml") {
        Ok(net) => {
            // The YAML round trip keeps every value exactly.
            let parsed = net.spec.regnet().expect("a RegNet spec");
            prop_assert_eq!(parsed.wa, p.wa);
            prop_assert_eq!(parsed.wm, p.wm);
            prop_assert_eq!(parsed.b, p.b);
            Ok(Some(net))
        }
        Err(error) => {
            prop_assert!(
                p.torchvision && p.b < 1.0,
                "rejected:\n{}\n{}",
                source,
                error
            );
            for diagnostic in &error.diagnostics {
                prop_assert!(
                    diagnostic.message.contains("compatibility rule"),
                    "{}",
                    error
                );
            }
            Ok(None)
        }
    }
}

/// Steps 1–3 of REFERENCE §1, written out here: the quantized width of every block, in float64
/// (pycls, numpy) or float32 (torchvision, torch's default dtype).
fn block_widths(p: &Params) -> Vec<u64> {
    (0..p.d)
        .map(|j| {
            if p.torchvision {
                let w0 = p.w0 as f32;
                let u = j as f32 * p.wa as f32 + w0;
                let k = ((u / w0).ln() / p.wm.ln() as f32).round_ties_even();
                let w = (w0 * (p.wm as f32).powf(k) / Q as f32).round_ties_even() * Q as f32;
                w as u64
            } else {
                let w0 = f64::from(p.w0);
                let u = f64::from(j) * p.wa + w0;
                let k = ((u / w0).ln() / p.wm.ln()).round_ties_even();
                let w = (w0 * p.wm.powf(k) / Q).round_ties_even() * Q;
                w as u64
            }
        })
        .collect()
}

/// Consecutive runs of equal values: (value, run length).
fn runs(widths: &[u64]) -> Vec<(u64, usize)> {
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for &w in widths {
        match runs.last_mut() {
            Some((last, n)) if *last == w => *n += 1,
            _ => runs.push((w, 1)),
        }
    }
    runs
}

/// h' = (h - 1) / s + 1: a k×k convolution with padding (k - 1) / 2.
fn down(size: usize, stride: usize) -> usize {
    (size - 1) / stride + 1
}

/// SE width: round_half_even(0.25 · block input width) (REFERENCE §1 step 6).
fn se_width(w_in: usize) -> usize {
    (w_in as f64 * 0.25).round_ties_even() as usize
}

/// pycls's complexity counters (REFERENCE §1, "Complexity as pycls counts it"), in u128.
#[derive(Default, Debug, PartialEq)]
struct Cx {
    flops: u128,
    params: u128,
    acts: u128,
}

impl Cx {
    /// k×k convolution, `cin → cout`, `groups` groups, `hw × hw` output, optional bias.
    fn conv(&mut self, k: u128, cin: u128, cout: u128, groups: u128, hw: u128, bias: bool) {
        let weights = k * k * cin * cout / groups;
        self.flops += weights * hw * hw;
        self.params += weights;
        if bias {
            self.flops += cout * hw * hw;
            self.params += cout;
        }
        self.acts += cout * hw * hw;
    }

    /// BatchNorm: 2C parameters (γ, β); running stats are buffers.
    fn bn(&mut self, c: u128) {
        self.params += 2 * c;
    }

    /// SE: two 1×1 convs with bias at 1×1, w_b → w_se → w_b.
    fn se(&mut self, w_b: u128, w_se: u128) {
        let ops = w_b * w_se + w_se + w_se * w_b + w_b;
        self.flops += ops;
        self.params += ops;
        self.acts += w_se + w_b;
    }

    /// The classifier: C → classes with bias.
    fn fc(&mut self, c: u128, classes: u128) {
        self.flops += c * classes + classes;
        self.params += c * classes + classes;
        self.acts += classes;
    }

    fn block(&mut self, b: &Block) {
        let (w_in, w, w_b) = (
            b.in_width as u128,
            b.width as u128,
            b.bottleneck_width as u128,
        );
        let (h_in, h_out) = (b.in_size as u128, b.out_size as u128);
        if b.in_width != b.width || b.stride != 1 {
            // proj: 1×1 with the block's stride, counted at the output resolution.
            self.conv(1, w_in, w, 1, h_out, false);
            self.bn(w);
        }
        self.conv(1, w_in, w_b, 1, h_in, false);
        self.bn(w_b);
        self.conv(3, w_b, w_b, b.groups as u128, h_out, false);
        self.bn(w_b);
        if let Some(w_se) = b.se_width {
            self.se(w_b, w_se as u128);
        }
        self.conv(1, w_b, w, 1, h_out, false);
        self.bn(w);
    }
}

fn architecture(net: &CompiledSpec) -> Architecture<'_> {
    net.architecture("random")
}

proptest! {
    #![proptest_config(config())]

    /// The stage depths are positive and add up to d.
    #[test]
    fn depths_sum_to_d(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        prop_assert!(net.stages.iter().all(|s| s.depth >= 1));
        let total: usize = net.stages.iter().map(|s| s.depth).sum();
        prop_assert_eq!(total, p.d as usize);
        prop_assert_eq!(architecture(&net).blocks().count(), p.d as usize);
    }

    /// Widths are positive; the group width divides the bottleneck width exactly
    /// (bottleneck_width % group_width == 0, groups · group_width == bottleneck_width); the group
    /// width is g clipped to the pre-compat bottleneck width, min(g, int(w_pre / b)), so it never
    /// exceeds g or the bottleneck width; and the bottleneck width is round(width / b).
    #[test]
    fn group_width_divides_bottleneck_width(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let pre = runs(&block_widths(&p));
        prop_assert_eq!(pre.len(), net.stages.len());
        for (s, &(w_pre, _)) in net.stages.iter().zip(&pre) {
            prop_assert!(s.width > 0 && s.bottleneck_width > 0 && s.group_width > 0, "{:?}", s);
            prop_assert_eq!(s.bottleneck_width % s.group_width, 0, "{:?}", s);
            prop_assert_eq!(s.groups() * s.group_width, s.bottleneck_width, "{:?}", s);
            prop_assert!(s.group_width <= s.bottleneck_width, "{:?}", s);
            prop_assert!(s.group_width <= p.g as usize, "{:?}", s);
            let v = (w_pre as f64 * p.multiplier()).max(1.0) as usize;
            prop_assert_eq!(s.group_width, (p.g as usize).min(v), "{:?}", s);
            let w_b = (s.width as f64 / p.b).round_ties_even() as usize;
            prop_assert_eq!(s.bottleneck_width, w_b, "{:?}", s);
        }
    }

    /// The stages are the runs of equal quantized block widths (steps 1–4): as many stages as
    /// runs, each as deep as its run. With b = 1 and pycls compat each stage width is the run's
    /// width rounded (half-even) to a multiple of min(g, width).
    #[test]
    fn stages_are_runs_of_block_widths(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let pre = runs(&block_widths(&p));
        prop_assert_eq!(net.stages.len(), pre.len());
        let depths: Vec<usize> = net.stages.iter().map(|s| s.depth).collect();
        let run_lengths: Vec<usize> = pre.iter().map(|&(_, n)| n).collect();
        prop_assert_eq!(depths, run_lengths);
        // Pre-compat widths strictly increase from run to run (exponents never decrease).
        prop_assert!(pre.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", pre);
        if p.b == 1.0 && !p.torchvision {
            for (s, &(w_pre, _)) in net.stages.iter().zip(&pre) {
                let m = (p.g as u64).min(w_pre);
                let expected = m.max(m * (w_pre as f64 / m as f64).round_ties_even() as u64);
                prop_assert_eq!(s.width as u64, expected, "{:?} from {}", s, w_pre);
            }
        }
    }

    /// After compat, stage widths never decrease (compat can make neighbours equal, REFERENCE §2,
    /// but both rules are monotone in the width, and so is the group clipping).
    #[test]
    fn stage_widths_never_decrease(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let widths: Vec<usize> = net.stages.iter().map(|s| s.width).collect();
        prop_assert!(widths.windows(2).all(|w| w[0] <= w[1]), "{:?}", widths);
    }

    /// Spatial sizes: the stem halves the input as (h - 1) / 2 + 1, each stage's first block
    /// does the same with stride 2, later blocks keep the size; each stage starts where the
    /// previous one ended. Blocks take their input width from the previous stage (the stem's 32
    /// for s1.b1) and their SE width from their input width.
    #[test]
    fn spatial_sizes_halve_per_stage(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let mut size = down(p.resolution as usize, 2);
        let mut width = STEM_WIDTH;
        for s in &net.stages {
            prop_assert_eq!(s.stride, 2);
            prop_assert_eq!(s.in_size, size);
            prop_assert_eq!(s.in_width, width);
            size = down(size, 2);
            prop_assert_eq!(s.out_size, size);
            width = s.width;
        }
        let mut expected = Vec::new();
        let mut w_in = STEM_WIDTH;
        let mut h = down(p.resolution as usize, 2);
        for (i, s) in net.stages.iter().enumerate() {
            for k in 0..s.depth {
                let stride = if k == 0 { 2 } else { 1 };
                let h_out = down(h, stride);
                expected.push((i + 1, k + 1, w_in, s.width, stride, h, h_out, p.se.then(|| se_width(w_in))));
                w_in = s.width;
                h = h_out;
            }
        }
        let actual: Vec<_> = architecture(&net)
            .blocks()
            .map(|b| (b.stage, b.index, b.in_width, b.width, b.stride, b.in_size, b.out_size, b.se_width))
            .collect();
        prop_assert_eq!(actual, expected);
    }

    /// Complexity is additive over blocks: stem conv + BN, then for each block proj (at the
    /// output resolution) + a + b (grouped) + SE (1×1, with bias) + c with their BNs, then the
    /// FC with bias; recounted here with pycls's formulas, it equals `network.complexity`.
    #[test]
    fn complexity_is_additive_over_blocks(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let mut cx = Cx::default();
        cx.conv(3, 3, STEM_WIDTH as u128, 1, down(p.resolution as usize, 2) as u128, false);
        cx.bn(STEM_WIDTH as u128);
        let arch = architecture(&net);
        for block in arch.blocks() {
            cx.block(&block);
        }
        let last = net.stages.last().unwrap().width;
        cx.fc(last as u128, NUM_CLASSES as u128);
        let actual = Cx {
            flops: net.complexity.flops.into(),
            params: net.complexity.params.into(),
            acts: net.complexity.acts.into(),
        };
        prop_assert_eq!(&actual, &cx);
        prop_assert_eq!(arch.complexity(), Some(net.complexity));
    }

    /// The graph has 4 nodes for input and stem (conv, BN, ReLU), per block 2 for the projection
    /// (conv, BN) if there is one, 3 for a (conv, BN, ReLU), 3 for b, 1 for SE if enabled, 2 for c
    /// (conv, BN), 2 for the residual add and ReLU, and 2 for the head (pool, FC).
    #[test]
    fn graph_node_count(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let arch = architecture(&net);
        let graph = graph::build(&arch);
        let mut expected = 4 + 2;
        let mut edges = 3 + 2; // input → conv → bn → relu; → pool → fc
        for b in arch.blocks() {
            let proj = b.in_width != b.width || b.stride != 1;
            expected += 3 + 3 + 2 + 2 + usize::from(p.se) + if proj { 2 } else { 0 };
            // a, b, [se], c chains; the add has two inputs; relu after add; proj chain.
            edges += 3 + 3 + usize::from(p.se) + 2 + 2 + 1 + if proj { 2 } else { 0 };
        }
        prop_assert_eq!(graph.node_count(), expected);
        prop_assert_eq!(graph.edge_count(), edges);
        let kinds = |op: fn(&Op) -> bool| graph.node_weights().filter(|n| op(&n.op)).count();
        prop_assert_eq!(kinds(|op| matches!(op, Op::Add)), p.d as usize);
        prop_assert_eq!(kinds(|op| matches!(op, Op::SqueezeExcite { .. })), if p.se { p.d as usize } else { 0 });
        prop_assert_eq!(kinds(|op| matches!(op, Op::Input)), 1);
        prop_assert_eq!(kinds(|op| matches!(op, Op::Linear)), 1);
    }

    /// The graph is a DAG whose every edge joins a producer's output shape to the consumer's
    /// input shape (both inputs of each add match); the add is the only node with two inputs,
    /// the input node the only one with none, the FC the only sink, with a
    /// num_classes × 1 × 1 output. Convolutions map h to (h - 1) / stride + 1, and the
    /// shape-preserving ops (BN, ReLU, SE, add) keep their shape. Node names are unique.
    #[test]
    fn graph_edges_connect_matching_shapes(p in params()) {
        let Some(net) = compile(&p)? else { return Ok(()) };
        let graph = graph::build(&architecture(&net));
        prop_assert!(!is_cyclic_directed(&graph));
        for edge in graph.edge_references() {
            let (from, to) = (&graph[edge.source()], &graph[edge.target()]);
            prop_assert_eq!(from.output, to.input, "{} → {}", from.name, to.name);
        }
        let mut names = HashMap::new();
        for index in graph.node_indices() {
            let node = &graph[index];
            prop_assert!(names.insert(node.name.clone(), index).is_none(), "duplicate {}", node.name);
            let inputs = graph.neighbors_directed(index, Direction::Incoming).count();
            let outputs = graph.neighbors_directed(index, Direction::Outgoing).count();
            match node.op {
                Op::Input => {
                    prop_assert_eq!(inputs, 0);
                    prop_assert_eq!((node.output.channels, node.output.height), (3, p.resolution as usize));
                }
                Op::Add => prop_assert_eq!(inputs, 2, "{}", node.name),
                _ => prop_assert_eq!(inputs, 1, "{}", node.name),
            }
            if let Op::Linear = node.op {
                prop_assert_eq!(outputs, 0);
                prop_assert_eq!((node.output.channels, node.output.height, node.output.width), (NUM_CLASSES, 1, 1));
            } else {
                prop_assert!(outputs >= 1, "{} is a dead end", node.name);
            }
            match node.op {
                Op::Conv { stride, groups, .. } => {
                    prop_assert_eq!(node.output.height, down(node.input.height, stride));
                    prop_assert_eq!(node.output.width, down(node.input.width, stride));
                    prop_assert_eq!(node.input.channels % groups, 0, "{}", node.name);
                    prop_assert_eq!(node.output.channels % groups, 0, "{}", node.name);
                }
                Op::BatchNorm | Op::Relu | Op::SqueezeExcite { .. } | Op::Add => {
                    prop_assert_eq!(node.input, node.output, "{}", node.name);
                }
                Op::Input | Op::GlobalAvgPool | Op::Linear => {}
            }
        }
    }
}

/// A float as YAML writes it (`.nan`, `.inf`, `-.inf` for the special values).
fn yaml_float(x: f64) -> String {
    if x.is_nan() {
        ".nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// Mostly `usual`, sometimes a special or arbitrary float.
fn wild_float(usual: std::ops::Range<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => usual,
        1 => 0.0f64..1e6,
        1 => prop::sample::select(vec![
            0.0, -0.0, -1.0, 1.0, 1.0 + f64::EPSILON, 1e-300, 1e308, f64::MAX, f64::NAN,
            f64::INFINITY, f64::NEG_INFINITY,
        ]),
    ]
}

/// Mostly `usual`, sometimes an edge or arbitrary u32.
fn wild_u32(usual: impl Strategy<Value = u32> + 'static) -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => usual.boxed(),
        1 => prop::sample::select(vec![0, 1, 7, 8, 1 << 20, (1 << 20) + 8, u32::MAX - 7, u32::MAX])
            .boxed(),
        1 => any::<u32>().boxed(),
    ]
}

/// Values well outside the paper's ranges (zeros, NaN, infinities, u32::MAX, huge resolutions,
/// odd quanta, b that makes 1/b non-integer) never panic: `compile_str` returns `Ok` or `Err`,
/// and an `Ok` network still has depths summing to d and exact group divisions. (b is kept at
/// ≥ 10⁻³ here; smaller b overflows, see `edge_cases::tiny_b_does_not_panic`.)
#[test]
fn wild_specs_never_panic() {
    let fields = (
        wild_u32(1u32..100),
        (
            wild_u32((1u32..64).prop_map(|x| 8 * x)),
            wild_float(0.0..300.0),
            wild_float(1.01..4.0),
            wild_u32(1u32..300),
        ),
        prop_oneof![
            8 => prop::sample::select(PAPER_B.to_vec()),
            1 => prop::sample::select(vec![1.0 / 3.0, 0.3, 1e-3, 1e3, 0.0, -1.0, f64::NAN]),
        ],
        (
            any::<bool>(),
            prop::option::weighted(0.2, wild_float(0.01..2.0)),
            any::<bool>(),
        ),
        (
            wild_u32(1u32..128),
            wild_u32(1u32..2000),
            wild_u32(prop_oneof![4 => 1u32..600, 1 => 600u32..70_000]),
        ),
        prop::sample::select(vec![8u32, 8, 8, 8, 8, 0, 1, 3, 16]),
    );
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(
            &fields,
            |(d, (w0, wa, wm, g), b, (se, se_ratio, tv), (stem_w, classes, resolution), q)| {
                let mut source = format!(
                    "d: {d}\nw0: {w0}\nwa: {}\nwm: {}\ng: {g}\nb: {}\nse: {se}\nstem_w: {stem_w}\n\
                     num_classes: {classes}\nresolution: {resolution}\nq: {q}\n",
                    yaml_float(wa),
                    yaml_float(wm),
                    yaml_float(b),
                );
                if let Some(ratio) = se_ratio {
                    source.push_str(&format!("se_ratio: {}\n", yaml_float(ratio)));
                }
                if tv {
                    source.push_str("compat: torchvision\n");
                }
                let owned = source.clone();
                let result = std::panic::catch_unwind(move || compile_str(&owned, "wild.yaml"));
                prop_assert!(result.is_ok(), "compile_str panicked on\n{}", source);
                match result.unwrap() {
                    Ok(net) => {
                        let total: usize = net.stages.iter().map(|s| s.depth).sum();
                        prop_assert_eq!(total, d as usize, "{}", source);
                        for s in &net.stages {
                            prop_assert_eq!(s.groups() * s.group_width, s.bottleneck_width);
                        }
                    }
                    Err(error) => prop_assert!(!error.diagnostics.is_empty()),
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}
