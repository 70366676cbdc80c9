use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::diagnostics::{Diagnostic, Location, excerpt, format_number};
use crate::outline::outline;

/// Which width/group compatibility rule turns stage widths into widths the grouped convolution
/// accepts. The two libraries disagree on three zoo models (REFERENCE.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// pycls (the paper's reference code): f64 quantization, half-to-even rounding, lcm with the
    /// bottleneck multiplier.
    #[default]
    Pycls,
    /// torchvision: f32 quantization and `_make_divisible` (half-up, at least 90% of the width).
    Torchvision,
}

impl Compat {
    /// The rule's name, as a spec's `compat:` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Pycls => "pycls",
            Compat::Torchvision => "torchvision",
        }
    }

    /// The other rule.
    pub fn other(self) -> Compat {
        match self {
            Compat::Pycls => Compat::Torchvision,
            Compat::Torchvision => Compat::Pycls,
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A RegNet spec as written in YAML, defaults filled in, not yet validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Display name (for example `RegNetX-200MF`); optional, but not blank when given.
    pub name: Option<String>,
    /// How the stages are given: the RegNet parameters or one entry per stage.
    pub design: Design,
    /// Squeeze-and-excitation (RegNetY).
    pub se: bool,
    /// SE width = round(se_ratio × block input width), 0 < se_ratio ≤ 1; `None` means 0.25.
    /// Only with `se: true`.
    pub se_ratio: Option<f64>,
    /// Output channels of the 3×3 stride-2 stem; default 32, as in pycls.
    pub stem_w: u32,
    /// Outputs of the classifier; default 1000 (ImageNet).
    pub num_classes: u32,
    /// Side of the square input image in pixels; default 224.
    pub resolution: u32,
    /// Width quantum: block widths are rounded to multiples of it; default 8, as in pycls. Only
    /// for the RegNet parameters.
    pub q: u32,
    /// Which library's arithmetic and compatibility rule to follow; default pycls. Only for the
    /// RegNet parameters (explicit stages are taken as written).
    pub compat: Compat,
}

/// The two ways a spec gives its stages (the paper's §3: RegNet is a restriction of AnyNet).
#[derive(Clone, Debug, PartialEq)]
pub enum Design {
    /// Stages quantized from a linear width function (keys `d`, `w0`, `wa`, `wm`, `g`, `b`).
    RegNet(RegNetParameters),
    /// The AnyNet form: each stage's depth, width, group width and bottleneck ratio given
    /// explicitly (keys `depths`, `widths`, `group_widths`, `bottleneck_ratios`), as the paper's
    /// AnyNetX spaces and pycls's `ANYNET` config describe networks.
    Stages(Vec<StageSpec>),
}

/// The RegNet parameters of a spec (the paper's §3.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegNetParameters {
    /// Total number of blocks over all stages, 1..=[`MAX_DEPTH`](crate::MAX_DEPTH).
    pub d: u32,
    /// Initial width `w0` in channels (the first block's `u_0`); positive and a multiple of `q`.
    pub w0: u32,
    /// Width slope `wa` in channels per block (`u_j = w0 + wa·j`); finite and at least 0.
    pub wa: f64,
    /// Width multiplier `wm` between stages; finite and greater than 1.
    pub wm: f64,
    /// Group width of the 3×3 convolution in channels, before clipping to the bottleneck width.
    pub g: u32,
    /// The paper's bottleneck ratio: bottleneck width = width / b (pycls's BOT_MUL is 1 / b).
    pub b: f64,
}

/// One stage of a spec in the per-stage (AnyNet) form, taken as written: no quantization and no
/// compatibility rule, so the group width must divide the bottleneck width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageSpec {
    /// Number of blocks (`depths` entry), at least 1.
    pub depth: u32,
    /// Output channels of every block (`widths` entry).
    pub width: u32,
    /// Channels per group of the 3×3 convolution (`group_widths` entry), clipped to the
    /// bottleneck width as pycls does.
    pub group_width: u32,
    /// The paper's bottleneck ratio (`bottleneck_ratios` entry; default 1): bottleneck width =
    /// round(width / ratio).
    pub bottleneck_ratio: f64,
}

impl Spec {
    /// The RegNet parameters, or `None` for a spec that gives its stages explicitly.
    pub fn regnet(&self) -> Option<&RegNetParameters> {
        match &self.design {
            Design::RegNet(parameters) => Some(parameters),
            Design::Stages(_) => None,
        }
    }

    /// The design's parameters in one line, as the CLI, the plot title and generated rustdoc
    /// show them: `d=13 w0=24 wa=36.44 wm=2.49 g=8 b=1` or `depths=[1, 2] widths=[32, 64]
    /// group_widths=[8, 8] bottleneck_ratios=[1, 1]`.
    pub fn parameters(&self) -> String {
        match &self.design {
            Design::RegNet(p) => format!(
                "d={} w0={} wa={} wm={} g={} b={}",
                p.d,
                p.w0,
                format_number(p.wa),
                format_number(p.wm),
                p.g,
                format_number(p.b)
            ),
            Design::Stages(stages) => {
                let list = |value: fn(&StageSpec) -> String| {
                    stages.iter().map(value).collect::<Vec<_>>().join(", ")
                };
                format!(
                    "depths=[{}] widths=[{}] group_widths=[{}] bottleneck_ratios=[{}]",
                    list(|s| s.depth.to_string()),
                    list(|s| s.width.to_string()),
                    list(|s| s.group_width.to_string()),
                    list(|s| format_number(s.bottleneck_ratio)),
                )
            }
        }
    }
}

/// Where each top-level key of the YAML document sits.
pub(crate) type KeyLocations = HashMap<String, Location>;

/// The RegNet parameters; all but `b` are required when the spec uses this form.
const REGNET_KEYS: [&str; 6] = ["d", "w0", "wa", "wm", "g", "b"];
/// The per-stage lists; all but `bottleneck_ratios` are required when the spec uses this form.
const STAGE_KEYS: [&str; 4] = ["depths", "widths", "group_widths", "bottleneck_ratios"];
const KNOWN: [&str; 18] = [
    "name",
    "d",
    "w0",
    "wa",
    "wm",
    "g",
    "b",
    "depths",
    "widths",
    "group_widths",
    "bottleneck_ratios",
    "se",
    "se_ratio",
    "stem_w",
    "num_classes",
    "resolution",
    "q",
    "compat",
];

/// Parses a spec, reporting every unknown key, missing field and wrongly typed value at once.
pub fn parse_spec(source: &str) -> Result<Spec, Vec<Diagnostic>> {
    let parsed = parse_with_locations(source)?;
    if parsed.diagnostics.is_empty() {
        Ok(parsed.spec)
    } else {
        Err(parsed.diagnostics)
    }
}

/// A spec read as far as possible: fields that are missing or of the wrong type hold
/// placeholders and are listed in `unusable`, so the rules can still check the other fields.
pub(crate) struct Parsed {
    pub spec: Spec,
    pub locations: KeyLocations,
    pub unusable: HashSet<&'static str>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Fails only when the document is not a YAML mapping or cannot be loaded; field problems go
/// in `Parsed`.
pub(crate) fn parse_with_locations(source: &str) -> Result<Parsed, Vec<Diagnostic>> {
    // YAML allows a byte order mark before the document; libyaml, told its input is UTF-8, would
    // read it as content.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let outline = outline(source, KNOWN.len());
    if !outline.loadable {
        return Err(outline.problems);
    }
    let document: Value = serde_yaml::from_str(source).map_err(|error| {
        let location = error.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        let invalid =
            Diagnostic::general(format!("invalid YAML: {}", strip_location(&error))).at(location);
        let mut problems = outline.problems.clone();
        problems.push(invalid);
        problems
    })?;
    let Value::Mapping(mapping) = document else {
        let found = match document {
            Value::Null => "nothing (an empty document)".into(),
            other => describe(&other),
        };
        let mut problems = outline.problems;
        problems.push(Diagnostic::general(format!(
            "a spec is a YAML mapping of fields (d, w0, wa, wm, g, ... or depths, widths, ...), \
             found {found}"
        )));
        return Err(problems);
    };

    let mut diagnostics = outline.problems;
    let locations = outline.keys;
    let mut fields: HashMap<&'static str, Value> = HashMap::new();
    let unknown = format!("unknown key; the spec's fields are {}", KNOWN.join(", "));
    for (key, value) in mapping {
        let Value::String(key) = key else {
            diagnostics.push(Diagnostic::general(format!(
                "keys must be field names, found {}",
                describe(&key)
            )));
            continue;
        };
        match KNOWN.iter().find(|known| **known == key) {
            Some(known) => {
                fields.insert(known, value);
            }
            None => diagnostics
                .push(Diagnostic::field(&key, unknown.clone()).at(locations.get(&key).copied())),
        }
    }
    let mut unusable = HashSet::new();
    let explicit = STAGE_KEYS.iter().any(|key| fields.contains_key(key));
    if explicit {
        for key in REGNET_KEYS.iter().filter(|key| fields.contains_key(*key)) {
            diagnostics.push(
                Diagnostic::field(
                    key,
                    "the per-stage lists (depths, widths, group_widths, bottleneck_ratios) replace \
                     the RegNet parameters (d, w0, wa, wm, g, b); give one form or the other",
                )
                .at(locations.get(*key).copied()),
            );
        }
        for key in ["q", "compat"]
            .iter()
            .filter(|key| fields.contains_key(*key))
        {
            diagnostics.push(
                Diagnostic::field(
                    key,
                    format!(
                        "{key} applies to the RegNet parameters' quantization; per-stage widths \
                         are taken as written"
                    ),
                )
                .at(locations.get(*key).copied()),
            );
        }
    }
    let required: &[&'static str] = if explicit {
        &STAGE_KEYS[..3]
    } else {
        &REGNET_KEYS[..5]
    };
    for &field in required {
        if !fields.contains_key(field) {
            diagnostics.push(Diagnostic::field(field, "missing required field"));
            unusable.insert(field);
        }
    }

    // A value the outline already reported (an unsupported tag) is not judged again.
    for flagged in &outline.flagged {
        if let Some((known, _)) = fields.remove_entry(flagged.as_str()) {
            unusable.insert(known);
        }
    }
    let mut take = |field: &'static str| -> Option<Value> { fields.remove(field) };
    let mut typed = Typed {
        diagnostics: &mut diagnostics,
        locations: &locations,
        unusable: &mut unusable,
    };
    let design = if explicit {
        let depths: Vec<u32> = typed.required("depths", take("depths"));
        let widths: Vec<u32> = typed.required("widths", take("widths"));
        let group_widths: Vec<u32> = typed.required("group_widths", take("group_widths"));
        let ratios: Option<Vec<f64>> =
            typed.optional("bottleneck_ratios", take("bottleneck_ratios"), None);
        typed.stages(depths, widths, group_widths, ratios)
    } else {
        Design::RegNet(RegNetParameters {
            d: typed.required("d", take("d")),
            w0: typed.required("w0", take("w0")),
            wa: typed.required("wa", take("wa")),
            wm: typed.required("wm", take("wm")),
            g: typed.required("g", take("g")),
            b: typed.optional("b", take("b"), 1.0),
        })
    };
    let spec = Spec {
        name: typed.optional("name", take("name"), None),
        design,
        se: typed.optional("se", take("se"), false),
        se_ratio: typed.optional("se_ratio", take("se_ratio"), None),
        stem_w: typed.optional("stem_w", take("stem_w"), 32),
        num_classes: typed.optional("num_classes", take("num_classes"), 1000),
        resolution: typed.optional("resolution", take("resolution"), 224),
        q: typed.optional("q", take("q"), 8),
        compat: typed.optional("compat", take("compat"), Compat::Pycls),
    };
    Ok(Parsed {
        spec,
        locations,
        unusable,
        diagnostics,
    })
}

/// Converts field values to their types, recording a diagnostic (and a placeholder) for each
/// value of the wrong type so that parsing goes on and reports them all.
struct Typed<'a> {
    diagnostics: &'a mut Vec<Diagnostic>,
    locations: &'a KeyLocations,
    unusable: &'a mut HashSet<&'static str>,
}

impl Typed<'_> {
    fn required<T: FieldType + Default>(&mut self, field: &'static str, value: Option<Value>) -> T {
        self.optional(field, value, T::default())
    }

    fn optional<T: FieldType>(
        &mut self,
        field: &'static str,
        value: Option<Value>,
        default: T,
    ) -> T {
        let Some(value) = value else { return default };
        // Read through a reference: the value is still needed to say what is wrong with it.
        match T::deserialize(&value) {
            Ok(typed) => typed,
            Err(_) => {
                self.unusable.insert(field);
                self.diagnostics.push(
                    Diagnostic::field(field, T::mismatch(&value))
                        .at(self.locations.get(field).copied()),
                );
                default
            }
        }
    }

    /// Zips the per-stage lists into stages, reporting lists whose lengths differ from `depths`.
    fn stages(
        &mut self,
        depths: Vec<u32>,
        widths: Vec<u32>,
        group_widths: Vec<u32>,
        ratios: Option<Vec<f64>>,
    ) -> Design {
        let stages = depths.len();
        let ratios = ratios.unwrap_or_else(|| vec![1.0; stages]);
        let lengths = [
            ("widths", widths.len()),
            ("group_widths", group_widths.len()),
            ("bottleneck_ratios", ratios.len()),
        ];
        let usable = |field: &str| !self.unusable.contains(field);
        if usable("depths") {
            if stages == 0 {
                self.diagnostics.push(
                    Diagnostic::field("depths", "depths must list at least one stage")
                        .at(self.locations.get("depths").copied()),
                );
            }
            for (field, length) in lengths {
                if usable(field) && length != stages {
                    self.diagnostics.push(
                        Diagnostic::field(
                            field,
                            format!(
                                "{field} has {length} {} and depths {stages}; every \
                                 per-stage list has one entry per stage",
                                if length == 1 { "entry" } else { "entries" }
                            ),
                        )
                        .at(self.locations.get(field).copied()),
                    );
                }
            }
        }
        Design::Stages(
            (0..stages
                .min(widths.len())
                .min(group_widths.len())
                .min(ratios.len()))
                .map(|i| StageSpec {
                    depth: depths[i],
                    width: widths[i],
                    group_width: group_widths[i],
                    bottleneck_ratio: ratios[i],
                })
                .collect(),
        )
    }
}

/// A field's type, as a spec's author reads it (serde's messages name Rust types and echo whole
/// values).
trait FieldType: DeserializeOwned {
    /// A value of the type, in words.
    const EXPECTED: &'static str;

    /// What is wrong with `value`, which does not convert to the type.
    fn mismatch(value: &Value) -> String {
        format!("expected {}, found {}", Self::EXPECTED, describe(value))
    }
}

impl FieldType for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
}

impl FieldType for f64 {
    const EXPECTED: &'static str = "a number";
}

impl FieldType for bool {
    const EXPECTED: &'static str = "true or false";
}

impl FieldType for String {
    const EXPECTED: &'static str = "a string";
}

impl FieldType for Compat {
    const EXPECTED: &'static str = "pycls or torchvision";
}

impl<T: FieldType> FieldType for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;

    fn mismatch(value: &Value) -> String {
        T::mismatch(value)
    }
}

impl<T: FieldType> FieldType for Vec<T> {
    const EXPECTED: &'static str = "a list";

    /// Names the first entry that does not convert, rather than the list.
    fn mismatch(value: &Value) -> String {
        let Value::Sequence(entries) = value else {
            return format!("expected a list, found {}", describe(value));
        };
        entries
            .iter()
            .enumerate()
            .find(|(_, entry)| T::deserialize(*entry).is_err())
            .map_or_else(
                || format!("expected a list of {}", T::EXPECTED),
                |(index, entry)| format!("entry {index}: {}", T::mismatch(entry)),
            )
    }
}

/// A value in a few words, quoting at most the start of a string.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => match n.as_f64() {
            Some(float) if n.is_f64() => format!("the number {}", format_number(float)),
            _ => format!("the number {n}"),
        },
        Value::String(s) => format!("the string \"{}\"", excerpt(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", excerpt(&t.tag.to_string())),
    }
}

/// serde_yaml's message for a document it cannot load, without the " at line L column C" it
/// appends (the location is reported separately) and cut to its first line: some messages
/// quote the document (a duplicate key).
fn strip_location(error: &serde_yaml::Error) -> String {
    const MAX_MESSAGE: usize = 200;
    let message = error.to_string();
    let message = match message.find(" at line ") {
        Some(at) => &message[..at],
        None => &message,
    };
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_at_once() {
        let errors = parse_spec("d: x\nw0: 24\nwm: 2.5\nfoo: 1\ng: 8\nbar: 2\n").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.clone().unwrap()).collect();
        assert_eq!(fields, ["foo", "bar", "wa", "d"]);
        assert_eq!(errors[0].location, Some(Location { line: 4, column: 1 }));
        assert_eq!(errors[3].location, Some(Location { line: 1, column: 1 }));
        assert!(
            errors[3].message
                == "expected a whole number from 0 to 4294967295, found the string \"x\"",
            "{}",
            errors[3].message
        );
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let errors = parse_spec("d: 13\nw0: [24\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].location.is_some());
        assert!(errors[0].message.starts_with("invalid YAML"));
    }
}
