//! Every kernel, on both instruction sets and with one and two threads, against a plain
//! reference written from PyTorch's definitions, on random shapes including odd sizes, tails
//! shorter than a register tile and 1-pixel images, with NaN and infinities injected: every path
//! must propagate them as PyTorch does (ReLU keeps NaN), not only agree on finite values.

use proptest::prelude::*;
use regnet_runtime::kernels::channels::{average_pool, scale_channels};
use regnet_runtime::kernels::conv3x3::{Conv3x3, PackedConv3x3};
use regnet_runtime::kernels::gemm::{Gemm, PackedLinear};
use regnet_runtime::kernels::parallel::Team;
use regnet_runtime::kernels::stem::{PackedStem, Stem};
use regnet_runtime::kernels::{Isa, Kernels, Pixels};

/// Every instruction set of this architecture; one the CPU lacks runs the best it has below it.
#[cfg(not(target_arch = "aarch64"))]
const ISAS: [Isa; 3] = [Isa::Scalar, Isa::Avx2Fma, Isa::Avx512];
#[cfg(target_arch = "aarch64")]
const ISAS: [Isa; 2] = [Isa::Scalar, Isa::Neon];

fn values(len: usize, seed: u64) -> Vec<f32> {
    // A small LCG: deterministic inputs that proptest's shrinking does not need to see.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The values a kernel must carry through unchanged in kind: NaN stays NaN, an infinity stays
/// infinite (or meets its opposite and becomes NaN).
const SPECIALS: [f32; 3] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

/// Up to three (position, which of `SPECIALS`) to overwrite in a kernel's input.
fn specials() -> impl Strategy<Value = Vec<(prop::sample::Index, usize)>> {
    prop::collection::vec((any::<prop::sample::Index>(), 0..SPECIALS.len()), 0..4)
}

fn inject(values: &mut [f32], specials: &[(prop::sample::Index, usize)]) {
    for (at, which) in specials {
        values[at.index(values.len())] = SPECIALS[*which];
    }
}

/// PyTorch's ReLU: `max(v, 0)` for numbers, NaN for NaN.
fn torch_relu(v: f32) -> f32 {
    if v.is_nan() { v } else { v.max(0.0) }
}

fn assert_close(actual: &[f32], expected: &[f32], terms: usize) {
    assert_eq!(actual.len(), expected.len());
    // Sums of `terms` products of values in [-1, 1] differ by rounding order only; whether a
    // sum is NaN or infinite does not depend on the order.
    let tolerance = 2e-6 * terms as f32;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let same = if e.is_finite() {
            (a - e).abs() <= tolerance
        } else {
            a.is_nan() && e.is_nan() || a == e
        };
        assert!(same, "element {i}: {a} vs {e}");
    }
}

/// Pads NHWC `[n][h][w][c]` with a zero border of one pixel.
fn pad_nhwc(x: &[f32], n: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut padded = vec![0.0; n * (h + 2) * (w + 2) * c];
    for b in 0..n {
        for y in 0..h {
            for xx in 0..w {
                let src = ((b * h + y) * w + xx) * c;
                let dst = ((b * (h + 2) + y + 1) * (w + 2) + xx + 1) * c;
                padded[dst..dst + c].copy_from_slice(&x[src..src + c]);
            }
        }
    }
    padded
}

/// The threads a workspace runs its kernels on.
fn pool(threads: usize) -> Team {
    Team::new(threads).expect("threads start")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// 1×1 convolution with every fusion, dense and strided input rows, dense and padded output
    /// rows.
    #[test]
    fn gemm_matches_reference(
        n in 1usize..3, h in 1usize..9, w in 1usize..9,
        // Past 256 inputs (448 with AVX2) the kernel splits K into passes over partial sums.
        k in prop_oneof![1usize..40, 250usize..600], j in 1usize..40,
        strided in any::<bool>(), padded in any::<bool>(), residual in any::<bool>(),
        relu in any::<bool>(), seed in any::<u64>(), specials in specials(),
    ) {
        let stride = if strided { 2 } else { 1 };
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let rows = n * oh * ow;
        let mut input = values(n * h * w * k, seed);
        inject(&mut input, &specials);
        let weight = values(j * k, seed ^ 1);
        let bias = values(j, seed ^ 2);
        let res = values(rows * j, seed ^ 3);
        let mut expected = vec![0.0; rows * j];
        for b in 0..n {
            for y in 0..oh {
                for x in 0..ow {
                    let p = (b * oh + y) * ow + x;
                    let src = ((b * h + y * stride) * w + x * stride) * k;
                    for o in 0..j {
                        let mut v = bias[o];
                        for i in 0..k {
                            v += input[src + i] * weight[o * k + i];
                        }
                        if residual { v += res[p * j + o]; }
                        if relu { v = torch_relu(v); }
                        expected[p * j + o] = v;
                    }
                }
            }
        }
        let packed = PackedLinear::new(&weight, &bias, k, j);
        let input_pixels = if strided {
            Pixels::Strided { h: oh, w: ow, stride, in_h: h, in_w: w }
        } else {
            Pixels::Dense
        };
        let output_pixels = if padded { Pixels::Padded { h: oh, w: ow } } else { Pixels::Dense };
        let written: Vec<usize> = (0..rows).map(|p| output_pixels.index(p)).collect();
        for isa in ISAS {
            for threads in [1, 2] {
                let gemm = Gemm {
                    weights: &packed,
                    rows,
                    input: &input,
                    input_pixels,
                    residual: residual.then_some(&res[..]),
                    relu,
                    output_pixels,
                };
                let mut output = vec![f32::NAN; output_pixels.extent(rows).unwrap() * j];
                pool(threads).install(|| gemm.run(Kernels::new(isa), threads, &mut output));
                // A padded output's border must stay untouched (NaN here).
                for (pixel, values) in output.chunks(j).enumerate() {
                    if !written.contains(&pixel) {
                        prop_assert!(values.iter().all(|v| v.is_nan()), "border pixel {} written", pixel);
                    }
                }
                let actual: Vec<f32> = written.iter().flat_map(|&at| output[at * j..(at + 1) * j].to_vec()).collect();
                assert_close(&actual, &expected, k + 2);
            }
        }
    }

    /// Grouped 3×3 convolution for group widths from 1 (depthwise) to dense, stride 1 and 2.
    #[test]
    fn conv3x3_matches_reference(
        // Rows up to 30 pixels cover every register tile width (28 is the widest) and tails.
        n in 1usize..3, h in 1usize..9, w in 1usize..31,
        // Multiples of 8 run the 8-wide kernels (pairs, triples for an odd count of 8-wide blocks:
        // 24, 40, 56, and singles); of 16 the 16-wide ones, in pairs and singles.
        group_width in prop::sample::select(vec![1usize, 3, 8, 16, 24, 32, 40, 48, 56]),
        groups in 1usize..4, strided in any::<bool>(), seed in any::<u64>(),
        specials in specials(), split in any::<prop::sample::Index>(),
        // Layers run group by group (each group's rows one line of pixels, register tiles
        // running on across rows) where an image's input is within 256 KiB, as drawn, or the
        // weights pass 128 KiB (layout 1); else row by row (layout 2).
        layout in 0usize..3,
    ) {
        let groups_within = |bytes: usize| (bytes / (group_width * group_width * 9 * 4)).max(1);
        let (n, h, w, groups) = match layout {
            // Enough groups that the weights pass 128 KiB, on narrow maps (the reference's work).
            1 => (n, h, w.min(9), groups_within(128 << 10) + 1),
            // Weights within 128 KiB and rows enough that one image's input passes 256 KiB.
            2 => {
                let groups = groups.min(groups_within(128 << 10));
                let rows = (256 << 10) / (group_width * groups * 4 * (w + 2));
                (1, h.max(rows), w, groups)
            }
            _ => (n, h, w, groups),
        };
        let c = group_width * groups;
        let stride = if strided { 2 } else { 1 };
        let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let mut input = values(n * h * w * c, seed);
        inject(&mut input, &specials);
        let weight = values(c * group_width * 9, seed ^ 1);
        let bias = values(c, seed ^ 2);
        let mut expected = vec![0.0; n * oh * ow * c];
        for b in 0..n {
            for y in 0..oh {
                for x in 0..ow {
                    for o in 0..c {
                        let g = o / group_width;
                        let mut v = bias[o];
                        for i in 0..group_width {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((y * stride + ky) as isize - 1, (x * stride + kx) as isize - 1);
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize { continue; }
                                    let at = ((b * h + iy as usize) * w + ix as usize) * c + g * group_width + i;
                                    v += input[at] * weight[(o * group_width + i) * 9 + ky * 3 + kx];
                                }
                            }
                        }
                        expected[((b * oh + y) * ow + x) * c + o] = torch_relu(v);
                    }
                }
            }
        }
        let padded = pad_nhwc(&input, n, h, w, c);
        for kernels in ISAS.map(Kernels::new) {
            // Packed for the table that runs it, as a network packs for its own.
            let packed = PackedConv3x3::new(&weight, &bias, c, group_width, stride, (h, w), kernels);
            match layout {
                1 => prop_assert!(packed.group_major(h, w)),
                2 => prop_assert!(!packed.group_major(h, w)),
                _ => {}
            }
            for threads in [1, 2] {
                let conv = Conv3x3 { weights: &packed, batch: n, height: h, width: w, input: &padded };
                let mut output = vec![f32::NAN; n * oh * ow * c];
                pool(threads).install(|| conv.run(kernels, threads, &mut output));
                assert_close(&output, &expected, group_width * 9 + 1);
                // The rows in two runs (as a network runs bands of them, a band's input rows
                // ready before it): the same bits as in one.
                let rows = n * oh;
                let at = split.index(rows + 1);
                let mut in_two = vec![f32::NAN; n * oh * ow * c];
                pool(threads).install(|| {
                    conv.run_rows(kernels, threads, 0..at, &mut in_two);
                    conv.run_rows(kernels, threads, at..rows, &mut in_two);
                });
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&in_two), bits(&output));
            }
        }
    }

    /// The stem from NCHW images, any output width (multiples of 8 and 16 take the SIMD
    /// paths), rows up to 20 pixels wide (the widest register tile is 14).
    #[test]
    fn stem_matches_reference(
        n in 1usize..3, h in 1usize..12, w in 1usize..40, outputs in 1usize..50, seed in any::<u64>(),
        specials in specials(),
    ) {
        let inputs = 3;
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        let mut image = values(n * inputs * h * w, seed);
        inject(&mut image, &specials);
        let weight = values(outputs * inputs * 9, seed ^ 1);
        let bias = values(outputs, seed ^ 2);
        let mut expected = vec![0.0; n * oh * ow * outputs];
        let mut padded = vec![0.0; n * inputs * (h + 2) * (w + 2)];
        for b in 0..n {
            for i in 0..inputs {
                for y in 0..h {
                    for x in 0..w {
                        padded[((b * inputs + i) * (h + 2) + y + 1) * (w + 2) + x + 1] = image[((b * inputs + i) * h + y) * w + x];
                    }
                }
            }
            for y in 0..oh {
                for x in 0..ow {
                    for o in 0..outputs {
                        let mut v = bias[o];
                        for i in 0..inputs {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((y * 2 + ky) as isize - 1, (x * 2 + kx) as isize - 1);
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize { continue; }
                                    v += image[((b * inputs + i) * h + iy as usize) * w + ix as usize] * weight[((o * inputs + i) * 3 + ky) * 3 + kx];
                                }
                            }
                        }
                        expected[((b * oh + y) * ow + x) * outputs + o] = torch_relu(v);
                    }
                }
            }
        }
        let packed = PackedStem::new(&weight, &bias, inputs, outputs);
        for isa in ISAS {
            for threads in [1, 2] {
                let stem = Stem { weights: &packed, batch: n, height: h, width: w, input: &padded };
                let mut output = vec![f32::NAN; n * oh * ow * outputs];
                pool(threads).install(|| stem.run(Kernels::new(isa), threads, &mut output));
                assert_close(&output, &expected, 28);
            }
        }
    }

    /// Global average pooling and the SE gate over NHWC maps of any channel count.
    #[test]
    fn channel_passes_match_reference(
        n in 1usize..4, pixels in 1usize..60, channels in 1usize..200, seed in any::<u64>(),
        specials in specials(), gate_specials in specials(),
    ) {
        let mut x = values(n * pixels * channels, seed);
        inject(&mut x, &specials);
        let mut gate = values(n * channels, seed ^ 1);
        inject(&mut gate, &gate_specials);
        let mut pooled_expected = vec![0.0; n * channels];
        let mut scaled_expected = x.clone();
        for b in 0..n {
            for c in 0..channels {
                let sum: f32 = (0..pixels).map(|p| x[(b * pixels + p) * channels + c]).sum();
                pooled_expected[b * channels + c] = sum / pixels as f32;
                for p in 0..pixels {
                    scaled_expected[(b * pixels + p) * channels + c] *= gate[b * channels + c];
                }
            }
        }
        for isa in ISAS {
            for threads in [1, 2] {
                let kernels = Kernels::new(isa);
                let mut pooled = vec![f32::NAN; n * channels];
                let mut scaled = x.clone();
                pool(threads).install(|| {
                    average_pool(kernels, threads, &x, n, pixels, channels, &mut pooled);
                    scale_channels(kernels, threads, &mut scaled, n, pixels, channels, &gate);
                });
                assert_close(&pooled, &pooled_expected, pixels);
                assert_close(&scaled, &scaled_expected, 1);
            }
        }
    }
}

/// Every kernel that applies ReLU, on every instruction set, with zero weights so that each output
/// is ReLU of its bias: NaN stays NaN, +∞ stays +∞, and only numbers below zero become zero.
/// 32 channels run the widest SIMD paths.
#[test]
fn relu_keeps_nan_and_infinity_on_every_path() {
    const CHANNELS: usize = 32;
    let pattern = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0, 0.5];
    let bias: Vec<f32> = pattern.iter().copied().cycle().take(CHANNELS).collect();
    let expected: Vec<f32> = [f32::NAN, f32::INFINITY, 0.0, 0.0, 0.5]
        .iter()
        .copied()
        .cycle()
        .take(CHANNELS)
        .collect();
    let check = |kernel: &str, isa: Isa, output: &[f32]| {
        for (o, (a, e)) in output.iter().zip(&expected).enumerate() {
            let same = a.is_nan() && e.is_nan() || a == e;
            assert!(same, "{kernel} on {isa:?}, channel {o}: {a}, expected {e}");
        }
    };

    // One image of 2×2 pixels, input all ones.
    let (h, w) = (2, 2);
    let linear = PackedLinear::new(&[0.0; CHANNELS * CHANNELS], &bias, CHANNELS, CHANNELS);
    let input = vec![1.0; h * w * CHANNELS];
    let padded = pad_nhwc(&input, 1, h, w, CHANNELS);
    let stem = PackedStem::new(&[0.0; CHANNELS * 3 * 9], &bias, 3, CHANNELS);
    let image = vec![1.0; 3 * (h + 2) * (w + 2)];
    for kernels in ISAS.map(Kernels::new) {
        let isa = kernels.isa();
        let depthwise =
            PackedConv3x3::new(&[0.0; CHANNELS * 9], &bias, CHANNELS, 1, 1, (h, w), kernels);
        let mut output = vec![0.0; h * w * CHANNELS];
        Gemm {
            weights: &linear,
            rows: h * w,
            input: &input,
            input_pixels: Pixels::Dense,
            residual: None,
            relu: true,
            output_pixels: Pixels::Dense,
        }
        .run(kernels, 1, &mut output);
        output
            .chunks(CHANNELS)
            .for_each(|pixel| check("1×1", isa, pixel));

        let mut output = vec![0.0; h * w * CHANNELS];
        Conv3x3 {
            weights: &depthwise,
            batch: 1,
            height: h,
            width: w,
            input: &padded,
        }
        .run(kernels, 1, &mut output);
        output
            .chunks(CHANNELS)
            .for_each(|pixel| check("3×3", isa, pixel));

        let mut output = vec![0.0; CHANNELS];
        Stem {
            weights: &stem,
            batch: 1,
            height: h,
            width: w,
            input: &image,
        }
        .run(kernels, 1, &mut output);
        check("stem", isa, &output);
    }
}

/// Winograd's 3×3 runs where it was measured faster, and only there: groups of 16 or more at
/// stride 1 over maps of even sides, with the AVX2 and NEON tables, finite weights. (Its numbers
/// are checked wherever it runs by `conv3x3_matches_reference`; this guards the choice, which
/// no numeric test sees.)
#[test]
fn winograd_runs_where_chosen() {
    for kernels in ISAS.map(Kernels::new) {
        let table_has_it = matches!(kernels.isa(), Isa::Avx2Fma | Isa::Neon);
        // (group width, stride, map side, a weight that is not finite, expected)
        let cases = [
            (24, 1, 14, false, table_has_it),
            (16, 1, 28, false, table_has_it),
            (8, 1, 28, false, false),
            (24, 2, 14, false, false),
            (24, 1, 7, false, false),
            (24, 1, 14, true, false),
        ];
        for (group_width, stride, side, poisoned, expected) in cases {
            let channels = 2 * group_width;
            let mut weight = vec![0.5; channels * group_width * 9];
            if poisoned {
                weight[5] = f32::INFINITY;
            }
            let bias = vec![0.0; channels];
            let packed = PackedConv3x3::new(
                &weight,
                &bias,
                channels,
                group_width,
                stride,
                (side, side),
                kernels,
            );
            let direct = (9 * channels * group_width * side * side) as u64;
            let (together, multiply_adds) = if expected {
                (2, direct * 16 / 36)
            } else {
                (1, direct)
            };
            let at = format!(
                "{:?}, groups of {group_width}, stride {stride}, {side}×{side}",
                kernels.isa()
            );
            assert_eq!(packed.rows_together(kernels, side, side), together, "{at}");
            assert_eq!(
                packed.multiply_adds(kernels, side, side, direct),
                multiply_adds,
                "{at}"
            );
        }
    }
}
