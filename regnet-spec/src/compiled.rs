use crate::architecture::{Architecture, Complexity, Stage, strided};
use crate::diagnostics::{Diagnostic, Location, SpecError, format_number};
use crate::files::read_regular;
use crate::quantize::{MAX_WIDTH, quantize};
use std::collections::HashSet;
use std::path::Path;

use crate::spec::{Compat, Design, RegNetParameters, Spec, StageSpec, parse_with_locations};

/// The deepest network a spec may describe. The paper samples d < 64; this bound keeps every
/// derived count far from overflow.
pub const MAX_DEPTH: u32 = 1024;

/// The smallest bottleneck ratio: bottlenecks up to 1024 times wider than their block keep every
/// width and count within range (the paper's ratios are 1, 2 and 4).
pub const MIN_B: f64 = 1.0 / 1024.0;

/// A spec compiled into a network: the validated spec, its stages and its complexity.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledSpec {
    /// The validated spec it was compiled from, defaults filled in.
    pub spec: Spec,
    /// The stages s1..sN in forward order, with spatial sizes and SE widths.
    pub stages: Vec<Stage>,
    /// pycls's flops, params and acts for one image at the spec's resolution.
    pub complexity: Complexity,
    /// Where the spec writes its `name`, for errors about the name found by other tools (the
    /// macro's type name).
    pub name_location: Option<Location>,
}

impl CompiledSpec {
    /// The spec's name, or `fallback` (for example the file stem) when it has none.
    pub fn display_name<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.spec.name.as_deref().unwrap_or(fallback)
    }

    /// Borrows the network as an [`Architecture`] labelled `name`, for the graph, the stage table
    /// and code generation.
    pub fn architecture<'a>(&'a self, name: &'a str) -> Architecture<'a> {
        Architecture {
            name,
            resolution: self.spec.resolution as usize,
            stem_width: self.spec.stem_w as usize,
            num_classes: self.spec.num_classes as usize,
            stages: &self.stages,
        }
    }
}

/// The largest spec file read, in bytes: a spec is a few hundred bytes, and this bound keeps
/// a file given by mistake (a device, a log, a dataset) from being read whole.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Reads and compiles a spec file. `origin` is how errors name the file (the path as the user
/// wrote it). Only a regular UTF-8 file of at most [`MAX_SPEC_BYTES`] is read.
pub fn compile_file(path: &Path, origin: &str) -> Result<CompiledSpec, SpecError> {
    let unreadable = |problem: Diagnostic| SpecError::new(origin, vec![problem]);
    let bytes = read_regular(path, MAX_SPEC_BYTES, "a spec").map_err(|error| {
        unreadable(Diagnostic::general(format!(
            "cannot read the spec: {error}"
        )))
    })?;
    let source = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        // The prefix before the first bad byte is valid UTF-8, so it can be counted in characters.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line_start = valid.rfind('\n').map_or(0, |newline| newline + 1);
        let location = Location {
            line: valid.matches('\n').count() + 1,
            column: valid[line_start..].chars().count() + 1,
        };
        unreadable(
            Diagnostic::general("the spec is not UTF-8 text (a spec is YAML, which is UTF-8)")
                .at(Some(location)),
        )
    })?;
    compile_str(&source, origin)
}

/// Parses, validates, quantizes and counts a spec, collecting every problem before reporting.
pub fn compile_str(source: &str, origin: &str) -> Result<CompiledSpec, SpecError> {
    let parsed =
        parse_with_locations(source).map_err(|diagnostics| SpecError::new(origin, diagnostics))?;
    let (spec, locations) = (parsed.spec, parsed.locations);
    let locate = |diagnostics: Vec<Diagnostic>| {
        let located = diagnostics
            .into_iter()
            .map(|d| {
                let location = d.field.as_ref().and_then(|f| locations.get(f).copied());
                d.at(location)
            })
            .collect();
        SpecError::new(origin, located)
    };
    let mut problems = parsed.diagnostics;
    problems.extend(validate(&spec, &parsed.unusable));
    if !problems.is_empty() {
        return Err(locate(problems));
    }
    let name_location = locations.get("name").copied();
    let network = build(spec).map_err(locate)?;
    Ok(CompiledSpec {
        name_location,
        ..network
    })
}

impl CompiledSpec {
    /// The other compatibility rule and the stage widths it gives, where they differ from this
    /// spec's: a checkpoint with those widths was made for that rule, which a load error says.
    pub fn compat_alternative(&self) -> Option<(Compat, Vec<usize>)> {
        let other = self.spec.compat.other();
        let network = self.under_compat(other)?;
        Some((other, network.stages.iter().map(|s| s.width).collect()))
    }

    /// The same spec under a different compatibility rule: `Some` with that network when its
    /// stage widths differ (a checkpoint of the other library then does not fit this one).
    pub fn under_compat(&self, compat: Compat) -> Option<CompiledSpec> {
        let spec = Spec {
            compat,
            ..self.spec.clone()
        };
        let other = CompiledSpec {
            name_location: self.name_location,
            ..build(spec).ok()?
        };
        let widths = |n: &CompiledSpec| n.stages.iter().map(|s| s.width).collect::<Vec<_>>();
        (widths(&other) != widths(self)).then_some(other)
    }
}

/// Quantizes, places and counts a validated spec.
fn build(spec: Spec) -> Result<CompiledSpec, Vec<Diagnostic>> {
    let quantized = quantize(&spec)?;
    let stages = place(&spec, &quantized)?;
    let network = CompiledSpec {
        spec,
        stages,
        complexity: Complexity::default(),
        name_location: None,
    };
    let complexity = network.architecture("").complexity().ok_or_else(|| {
        vec![Diagnostic::general(
            "the network's flops, params or acts do not fit in 64 bits (check resolution and widths)",
        )]
    })?;
    Ok(CompiledSpec {
        complexity,
        ..network
    })
}

/// The rules a spec must satisfy before quantization, as pycls asserts them plus the bounds that
/// keep every count finite.
/// Rules on fields in `unusable` (missing or mistyped, already reported) are skipped.
fn validate(spec: &Spec, unusable: &HashSet<&'static str>) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut rule = |ok: bool, field: &str, message: String| {
        if !ok && !unusable.contains(field) {
            problems.push(Diagnostic::field(field, message));
        }
    };
    match &spec.design {
        Design::RegNet(regnet) => validate_regnet(regnet, spec, unusable, &mut rule),
        Design::Stages(stages) => validate_stages(stages, &mut rule),
    }
    match spec.se_ratio {
        Some(ratio) if !spec.se => rule(
            false,
            "se_ratio",
            format!(
                "se_ratio = {} has no effect without `se: true`",
                format_number(ratio)
            ),
        ),
        // A squeeze: the SE width is at most the block's input width, so within MAX_WIDTH too
        // (pycls and timm use 0.25).
        Some(ratio) => rule(
            ratio > 0.0 && ratio <= 1.0,
            "se_ratio",
            format!(
                "se_ratio = {} must be greater than 0 and at most 1 (SE width = se_ratio × block \
                 input width)",
                format_number(ratio)
            ),
        ),
        None => {}
    }
    rule(
        spec.stem_w >= 1,
        "stem_w",
        format!("stem_w = {} must be positive", spec.stem_w),
    );
    rule(
        u64::from(spec.stem_w) <= MAX_WIDTH,
        "stem_w",
        format!("stem_w = {} must be at most {MAX_WIDTH}", spec.stem_w),
    );
    rule(
        spec.num_classes >= 1,
        "num_classes",
        format!("num_classes = {} must be positive", spec.num_classes),
    );
    rule(
        spec.resolution >= 1,
        "resolution",
        format!("resolution = {} must be positive", spec.resolution),
    );
    if let Some(name) = &spec.name {
        rule(
            !name.trim().is_empty(),
            "name",
            "name must not be empty".into(),
        );
    }
    problems
}

/// The RegNet parameters' rules, as pycls asserts them plus the bounds that keep counts finite.
fn validate_regnet(
    p: &RegNetParameters,
    spec: &Spec,
    unusable: &HashSet<&'static str>,
    rule: &mut impl FnMut(bool, &str, String),
) {
    rule(
        p.d >= 1,
        "d",
        format!("d = {} must be at least 1 (the number of blocks)", p.d),
    );
    rule(
        p.d <= MAX_DEPTH,
        "d",
        format!("d = {} must be at most {MAX_DEPTH}", p.d),
    );
    rule(p.w0 >= 1, "w0", format!("w0 = {} must be positive", p.w0));
    rule(
        u64::from(p.w0) <= MAX_WIDTH,
        "w0",
        format!("w0 = {} must be at most {MAX_WIDTH}", p.w0),
    );
    rule(spec.q >= 1, "q", format!("q = {} must be positive", spec.q));
    rule(
        spec.q == 0 || unusable.contains("q") || p.w0.is_multiple_of(spec.q),
        "w0",
        format!("w0 = {} must be a multiple of q = {}", p.w0, spec.q),
    );
    rule(
        p.wa.is_finite() && p.wa >= 0.0,
        "wa",
        format!("wa = {} must be finite and at least 0", format_number(p.wa)),
    );
    rule(
        p.wm.is_finite() && p.wm > 1.0,
        "wm",
        format!(
            "wm = {} must be finite and greater than 1",
            format_number(p.wm)
        ),
    );
    rule(
        p.g >= 1,
        "g",
        format!("g = {} must be positive (the group width)", p.g),
    );
    rule(
        p.b.is_finite() && p.b > 0.0,
        "b",
        format!(
            "b = {} must be finite and greater than 0 (bottleneck width = width / b)",
            format_number(p.b)
        ),
    );
    rule(
        !(p.b > 0.0 && p.b < MIN_B),
        "b",
        format!(
            "b = {} must be at least 1/{} (bottleneck width = width / b)",
            format_number(p.b),
            1.0 / MIN_B
        ),
    );
    if spec.compat == Compat::Pycls && p.b.is_finite() && p.b > 0.0 {
        let multiplier = 1.0 / p.b;
        rule(
            multiplier <= 1.0 || multiplier.fract() == 0.0,
            "b",
            format!(
                "b = {} gives a bottleneck multiplier 1/b = {}, which pycls's rule needs to be an \
                 integer when b < 1 (use b = 1/2, 1/4, ...)",
                format_number(p.b),
                format_number(multiplier)
            ),
        );
    }
}

/// The per-stage form's rules on each entry (an empty list is reported by the parser); the group
/// rule needs the bottleneck widths and is checked when the stages are formed.
fn validate_stages(stages: &[StageSpec], rule: &mut impl FnMut(bool, &str, String)) {
    let total: u64 = stages.iter().map(|s| u64::from(s.depth)).sum();
    rule(
        total <= u64::from(MAX_DEPTH),
        "depths",
        format!("the depths add up to {total} blocks; at most {MAX_DEPTH} are allowed"),
    );
    for (i, s) in stages.iter().enumerate() {
        rule(
            s.depth >= 1,
            "depths",
            format!("depths[{i}] = {} must be at least 1", s.depth),
        );
        rule(
            s.width >= 1 && u64::from(s.width) <= MAX_WIDTH,
            "widths",
            format!("widths[{i}] = {} must be from 1 to {MAX_WIDTH}", s.width),
        );
        rule(
            s.group_width >= 1,
            "group_widths",
            format!("group_widths[{i}] = {} must be positive", s.group_width),
        );
        let ratio = s.bottleneck_ratio;
        rule(
            ratio.is_finite() && ratio >= MIN_B,
            "bottleneck_ratios",
            format!(
                "bottleneck_ratios[{i}] = {} must be finite and at least 1/{} (bottleneck width \
                 = width / ratio)",
                format_number(ratio),
                1.0 / MIN_B
            ),
        );
    }
}

/// Adds strides, spatial sizes, input widths and SE widths to the quantized stages.
fn place(spec: &Spec, quantized: &[crate::QuantizedStage]) -> Result<Vec<Stage>, Vec<Diagnostic>> {
    let se_ratio = spec.se.then(|| spec.se_ratio.unwrap_or(0.25));
    let se_width = |w_in: usize| se_ratio.map(|r| (w_in as f64 * r).round_ties_even() as usize);
    let mut problems = Vec::new();
    let mut stages = Vec::with_capacity(quantized.len());
    let mut in_width = spec.stem_w as usize;
    let mut in_size = strided(spec.resolution as usize, 2);
    for (index, q) in quantized.iter().enumerate() {
        let stride = 2;
        let out_size = strided(in_size, stride);
        let stage = Stage {
            depth: q.depth,
            width: q.width,
            group_width: q.group_width,
            bottleneck_width: q.bottleneck_width,
            stride,
            in_width,
            in_size,
            out_size,
            se_width: se_width(in_width),
            se_width_rest: if q.depth > 1 { se_width(q.width) } else { None },
        };
        if stage.se_width == Some(0) || stage.se_width_rest == Some(0) {
            problems.push(Diagnostic::field(
                "se_ratio",
                format!(
                    "stage {}: se_ratio × block input width rounds to an SE width of 0 channels",
                    index + 1
                ),
            ));
        }
        stages.push(stage);
        in_width = q.width;
        in_size = out_size;
    }
    if problems.is_empty() {
        Ok(stages)
    } else {
        Err(problems)
    }
}
