//! Steps 1–5 of REFERENCE.md §1: continuous widths, exponents, quantized widths, stages, and the
//! width/group compatibility rule.

use crate::diagnostics::{Diagnostic, format_number};
use crate::spec::{Compat, Design, RegNetParameters, Spec, StageSpec};

/// A stage after quantization and the compatibility rule, before spatial sizes are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizedStage {
    /// Number of consecutive blocks that quantized to the same width `w_j`.
    pub depth: usize,
    /// Stage width in channels after the compatibility rule (may differ from the quantized `w_j`).
    pub width: usize,
    /// The group width after clipping against the bottleneck width.
    pub group_width: usize,
    /// `round_half_even(width / b)` channels; a multiple of `group_width`.
    pub bottleneck_width: usize,
}

/// One block's width before stages are formed: the paper's u_j, its rounded exponent and w_j.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockWidth {
    /// `u_j = w0 + wa·j` in channels, unrounded (computed in f32 under torchvision, then widened).
    pub continuous: f64,
    /// `k_j = round_half_even(ln(u_j / w0) / ln(wm))`: the block's stage index before stages are
    /// formed (a skipped value means no stage for it).
    pub exponent: i64,
    /// `w_j = q · round_half_even(w0 · wm^k_j / q)` channels, before the compatibility rule.
    pub quantized: u64,
}

/// Per-block widths (steps 1–3) in the arithmetic of the spec's `compat` library: float64 for
/// pycls, float32 for torchvision (whose tensors default to it). `None` for a spec that gives its
/// stages explicitly (it has no width function).
pub fn block_widths(spec: &Spec) -> Option<Vec<BlockWidth>> {
    spec.regnet()
        .map(|p| regnet_block_widths(p, spec.q, spec.compat))
}

fn regnet_block_widths(spec: &RegNetParameters, q: u32, compat: Compat) -> Vec<BlockWidth> {
    let quantum = f64::from(q);
    (0..spec.d)
        .map(|j| match compat {
            Compat::Pycls => {
                let w0 = f64::from(spec.w0);
                let continuous = f64::from(j) * spec.wa + w0;
                let exponent = ((continuous / w0).ln() / spec.wm.ln()).round_ties_even();
                let quantized = (w0 * spec.wm.powf(exponent) / quantum).round_ties_even() * quantum;
                BlockWidth {
                    continuous,
                    exponent: exponent as i64,
                    quantized: quantized as u64,
                }
            }
            Compat::Torchvision => {
                let w0 = spec.w0 as f32;
                let continuous = j as f32 * spec.wa as f32 + w0;
                let exponent = ((continuous / w0).ln() / spec.wm.ln() as f32).round_ties_even();
                let quantized = (w0 * (spec.wm as f32).powf(exponent) / quantum as f32)
                    .round_ties_even()
                    * quantum as f32;
                BlockWidth {
                    continuous: f64::from(continuous),
                    exponent: exponent as i64,
                    quantized: quantized as u64,
                }
            }
        })
        .collect()
}

/// The largest channel count a spec may produce; far above any published RegNet (RegNetY-128GF
/// reaches 7,392) and low enough that every size derived from it fits comfortably in a `usize`.
pub const MAX_WIDTH: u64 = 1 << 20;

/// Quantizes a validated spec into stages. Equal adjacent stages are kept apart, as pycls does:
/// the stage count is fixed before the compatibility rule can make two stages equal. A spec in the
/// per-stage form is taken as written, its group widths checked against its bottleneck widths.
pub fn quantize(spec: &Spec) -> Result<Vec<QuantizedStage>, Vec<Diagnostic>> {
    let regnet = match &spec.design {
        Design::RegNet(regnet) => regnet,
        Design::Stages(stages) => return explicit_stages(stages),
    };
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for block in regnet_block_widths(regnet, spec.q, spec.compat) {
        match runs.last_mut() {
            Some((width, depth)) if *width == block.quantized => *depth += 1,
            _ => runs.push((block.quantized, 1)),
        }
    }
    let mut diagnostics = Vec::new();
    let mut stages = Vec::with_capacity(runs.len());
    for (index, &(width, depth)) in runs.iter().enumerate() {
        if width == 0 || width > MAX_WIDTH {
            // A width past MAX_WIDTH may be a float that saturated the cast: no number for it.
            let quantized = if width == 0 {
                "0 channels".to_owned()
            } else {
                format!("more than {MAX_WIDTH} channels")
            };
            diagnostics.push(Diagnostic::general(format!(
                "stage {} quantizes to {quantized}; widths must be between 1 and {MAX_WIDTH} \
                 (check w0, wa and wm)",
                index + 1
            )));
            continue;
        }
        match compatible(regnet, spec.compat, width as usize) {
            Ok((width, group_width, bottleneck_width)) => stages.push(QuantizedStage {
                depth,
                width,
                group_width,
                bottleneck_width,
            }),
            Err(message) => diagnostics.push(Diagnostic::general(format!(
                "stage {}: {message}",
                index + 1
            ))),
        }
    }
    if diagnostics.is_empty() {
        Ok(stages)
    } else {
        Err(diagnostics)
    }
}

/// Stages given one by one: pycls's AnyNet computes the bottleneck as round(width × BOT_MUL)
/// and clips the group width to it, without the RegNet compatibility rule, so a group width
/// that does not divide the bottleneck is an error here rather than a silently changed width.
fn explicit_stages(stages: &[StageSpec]) -> Result<Vec<QuantizedStage>, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut quantized = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        let width = stage.width as usize;
        let bottleneck_width = bottleneck_width(width, stage.bottleneck_ratio);
        if bottleneck_width == 0 || bottleneck_width as u64 > MAX_WIDTH {
            diagnostics.push(Diagnostic::field(
                "bottleneck_ratios",
                format!(
                    "stage {}: width {width} / bottleneck ratio {} rounds to {bottleneck_width} \
                     bottleneck channels; it must be from 1 to {MAX_WIDTH}",
                    i + 1,
                    format_number(stage.bottleneck_ratio)
                ),
            ));
            continue;
        }
        let group_width = (stage.group_width as usize).min(bottleneck_width);
        if !bottleneck_width.is_multiple_of(group_width) {
            let divisors: Vec<String> = (1..=group_width)
                .rev()
                .filter(|d| bottleneck_width.is_multiple_of(*d))
                .take(3)
                .map(|d| d.to_string())
                .collect();
            diagnostics.push(Diagnostic::field(
                "group_widths",
                format!(
                    "stage {}: group width {group_width} does not divide the bottleneck width \
                     {bottleneck_width} (width {width} / ratio {}); group widths that do: {}",
                    i + 1,
                    format_number(stage.bottleneck_ratio),
                    divisors.join(", ")
                ),
            ));
            continue;
        }
        quantized.push(QuantizedStage {
            depth: stage.depth as usize,
            width,
            group_width,
            bottleneck_width,
        });
    }
    if diagnostics.is_empty() {
        Ok(quantized)
    } else {
        Err(diagnostics)
    }
}

/// Step 5 and step 6's bottleneck width: returns (stage width, group width, bottleneck width).
fn compatible(
    spec: &RegNetParameters,
    compat: Compat,
    width: usize,
) -> Result<(usize, usize, usize), String> {
    // pycls's BOT_MUL: the bottleneck width is width × BOT_MUL.
    let multiplier = 1.0 / spec.b;
    let group = spec.g as usize;
    let (width, group_width) = match compat {
        Compat::Pycls => {
            // pycls main `adjust_block_compatibility`.
            let bottleneck = (width as f64 * multiplier).max(1.0) as usize;
            let group_width = group.min(bottleneck);
            let quantum = if multiplier > 1.0 {
                lcm(group_width, multiplier as usize)
            } else {
                group_width
            };
            let rounded =
                ((bottleneck as f64 / quantum as f64).round_ties_even() as usize) * quantum;
            let bottleneck = quantum.max(rounded);
            ((bottleneck as f64 / multiplier) as usize, group_width)
        }
        Compat::Torchvision => {
            // torchvision `_adjust_widths_groups_compatibilty` with `_make_divisible`.
            let bottleneck = (width as f64 * multiplier) as usize;
            if bottleneck == 0 {
                return Err(format!(
                    "the bottleneck width of a {width}-wide stage rounds to 0 (torchvision's rule \
                     needs width / b ≥ 1)"
                ));
            }
            let group_width = group.min(bottleneck);
            let mut divisible = group_width.max(
                (bottleneck as f64 + group_width as f64 / 2.0) as usize / group_width * group_width,
            );
            if (divisible as f64) < 0.9 * bottleneck as f64 {
                divisible += group_width;
            }
            ((divisible as f64 / multiplier) as usize, group_width)
        }
    };
    let bottleneck_width = bottleneck_width(width, spec.b);
    if width as u64 > MAX_WIDTH || bottleneck_width as u64 > MAX_WIDTH {
        return Err(format!(
            "the compatibility rule gives width {width} with bottleneck width {bottleneck_width}; \
             both must be at most {MAX_WIDTH} (check b)"
        ));
    }
    if width == 0 || bottleneck_width == 0 || !bottleneck_width.is_multiple_of(group_width) {
        return Err(format!(
            "the compatibility rule gives width {width} with bottleneck width {bottleneck_width}, \
             which group width {group_width} does not divide (choose b so that 1/b is an integer \
             or b an integer)"
        ));
    }
    Ok((width, group_width, bottleneck_width))
}

/// pycls's bottleneck width for the paper's ratio b: `round(w × BOT_MUL)` with BOT_MUL = 1 / b
/// (Python's round, half to even), for RegNet stages and per-stage specs alike.
fn bottleneck_width(width: usize, b: f64) -> usize {
    (width as f64 * (1.0 / b)).round_ties_even() as usize
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}
