//! `regnet sample`: points of the RegNet design spaces as spec files, with their complexity.

use std::io::{self, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use regnet_spec::sample::{Filter, Sample, Sampler, Space};
use regnet_spec::{RegNetParameters, Stage};
use serde_json::{Map, Value};

use crate::output;

/// "380M..420M" (or "0.4G..", "..1e9", plain numbers; K, M and G are powers of 1000) to an
/// inclusive range of multiply-adds.
pub fn parse_flops(text: &str) -> Result<(u64, u64), String> {
    let (low, high) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range like 380M..420M"))?;
    let number = |part: &str, empty: u64| -> Result<u64, String> {
        let part = part.trim();
        if part.is_empty() {
            return Ok(empty);
        }
        let (digits, scale) = match part.char_indices().last() {
            Some((i, 'K' | 'k')) => (&part[..i], 1e3),
            Some((i, 'M' | 'm')) => (&part[..i], 1e6),
            Some((i, 'G' | 'g')) => (&part[..i], 1e9),
            _ => (part, 1.0),
        };
        digits
            .parse::<f64>()
            .ok()
            .map(|v| v * scale)
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < u64::MAX as f64)
            .map(|v| v.round() as u64)
            .ok_or_else(|| format!("`{part}` is not a number of flops (e.g. 400M, 1.6G)"))
    };
    let (low, high) = (number(low, 0)?, number(high, u64::MAX)?);
    if low > high {
        return Err(format!("`{text}`: the lower bound is above the upper one"));
    }
    Ok((low, high))
}

/// One column of the table, the CSV and the JSON: its name, its width in the table (numbers are
/// right-aligned) and its value for a sample.
struct Column {
    name: &'static str,
    width: usize,
    left: bool,
    value: fn(&Sample) -> Value,
}

const fn column(
    name: &'static str,
    width: usize,
    left: bool,
    value: fn(&Sample) -> Value,
) -> Column {
    Column {
        name,
        width,
        left,
        value,
    }
}

fn regnet(sample: &Sample) -> &RegNetParameters {
    sample
        .network
        .spec
        .regnet()
        .expect("RegNet spaces sample RegNet specs")
}

fn stage_values(sample: &Sample, value: fn(&Stage) -> usize) -> Value {
    sample.network.stages.iter().map(value).collect()
}

const NAME: Column = column("name", 11, true, |s| s.name.as_str().into());
/// The network's columns, shared by both kinds of space: SE, the stages and the complexity.
const NETWORK: [Column; 9] = [
    column("se", 5, true, |s| s.network.spec.se.into()),
    column("stages", 6, false, |s| s.network.stages.len().into()),
    column("depths", 14, true, |s| stage_values(s, |st| st.depth)),
    column("widths", 22, true, |s| stage_values(s, |st| st.width)),
    column("group_widths", 14, true, |s| {
        stage_values(s, |st| st.group_width)
    }),
    column("bottleneck_widths", 22, true, |s| {
        stage_values(s, |st| st.bottleneck_width)
    }),
    column("flops", 11, false, |s| s.network.complexity.flops.into()),
    column("params", 9, false, |s| s.network.complexity.params.into()),
    column("acts", 9, false, |s| s.network.complexity.acts.into()),
];
/// The RegNet parameters drawn (AnyNet samples are fully described by their stages).
const REGNET: [Column; 6] = [
    column("d", 2, false, |s| regnet(s).d.into()),
    column("w0", 3, false, |s| regnet(s).w0.into()),
    column("wa", 5, false, |s| regnet(s).wa.into()),
    column("wm", 5, false, |s| regnet(s).wm.into()),
    column("g", 2, false, |s| regnet(s).g.into()),
    column("b", 1, false, |s| regnet(s).b.into()),
];

fn columns(space: Space) -> Vec<&'static Column> {
    let parameters: &'static [Column] = match space {
        Space::AnyNetX(_) => &[],
        Space::RegNetX | Space::RegNetY => &REGNET,
    };
    std::iter::once(&NAME)
        .chain(parameters)
        .chain(&NETWORK)
        .collect()
}

/// A value as one table or CSV cell: lists space-separated, strings bare.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(" "),
        // Rust's shortest round-trip form: b = 2, not 2.0.
        Value::Number(number) if number.is_f64() => number.as_f64().unwrap_or(f64::NAN).to_string(),
        other => other.to_string(),
    }
}

/// The most samples one run keeps: the paper's analyses use a few hundred per space, and each
/// kept sample's row (about 1 KB of text) stays in memory for `samples.csv` and `samples.json`.
pub const MAX_COUNT: usize = 100_000;
/// The most draws one run makes, a bound on its time (a draw compiles a spec).
pub const MAX_ATTEMPTS: usize = 10_000_000;

pub struct Request<'a> {
    pub space: Space,
    pub count: usize,
    pub seed: u64,
    pub filter: Filter,
    pub attempts: usize,
    pub output: Option<&'a Path>,
}

/// Samples, printing each kept sample's row and writing its spec as it is kept (draws show as
/// progress on a terminal's stderr), then `samples.csv` and `samples.json`.
pub fn run(out: &mut impl Write, request: &Request<'_>) -> io::Result<Result<(), String>> {
    if let Some(dir) = request.output
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        let why = match std::fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => {
                "it is a file; -o names the directory for the samples' files".to_owned()
            }
            _ => error.to_string(),
        };
        return Ok(Err(format!("cannot create {}: {why}", dir.display())));
    }
    let columns = columns(request.space);
    let line = |cells: Vec<String>| {
        columns
            .iter()
            .zip(cells)
            .map(|(c, text)| {
                let width = c.width;
                if c.left {
                    format!("{text:<width$}")
                } else {
                    format!("{text:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_owned()
    };
    writeln!(
        out,
        "{}",
        line(columns.iter().map(|c| c.name.to_owned()).collect())
    )?;
    let progress = draws_progress(request.attempts);
    let mut sampler = Sampler::new(request.space, request.filter, request.seed);
    let mut tables = Tables::new(&columns);
    while tables.rows < request.count && sampler.drawn() < request.attempts {
        let kept = sampler.draw();
        progress.set_position(sampler.drawn() as u64);
        let Some(sample) = kept else {
            continue;
        };
        let row: Vec<Value> = columns.iter().map(|c| (c.value)(&sample)).collect();
        progress.suspend(|| writeln!(out, "{}", line(row.iter().map(cell).collect())))?;
        if let Some(dir) = request.output
            && let Err(message) = output::write(
                &dir.join(format!("{}.yaml", sample.name)),
                sample.yaml.as_bytes(),
            )
        {
            return Ok(Err(message));
        }
        if let Err(message) = tables.push(&row) {
            return Ok(Err(message));
        }
        progress.set_message(tables.rows.to_string());
    }
    progress.finish_and_clear();
    let (kept, drawn) = (tables.rows, sampler.drawn());
    writeln!(out, "{kept} kept of {drawn} drawn (seed {})", request.seed)?;
    if let Some(dir) = request.output
        && let Err(message) = tables.write(dir)
    {
        return Ok(Err(message));
    }
    if kept < request.count {
        return Ok(Err(format!(
            "found {kept} of {} samples in {drawn} draws; widen --flops or --stages, or raise --attempts",
            request.count
        )));
    }
    Ok(Ok(()))
}

/// Samples kept and draws made, on stderr when it is a terminal.
fn draws_progress(attempts: usize) -> ProgressBar {
    let progress = ProgressBar::new(attempts as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} kept, {pos}/{len} draws, {elapsed}") {
        progress.set_style(style);
    }
    progress.set_message("0");
    progress
}

/// The text of `samples.csv` and `samples.json`, a row at a time: the kept samples are not
/// held, only these.
struct Tables {
    names: Vec<&'static str>,
    csv: String,
    json: String,
    rows: usize,
}

impl Tables {
    fn new(columns: &[&Column]) -> Self {
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        Tables {
            csv: names.join(",") + "\n",
            names,
            json: "[".to_owned(),
            rows: 0,
        }
    }

    fn push(&mut self, row: &[Value]) -> Result<(), String> {
        self.csv
            .push_str(&row.iter().map(cell).collect::<Vec<_>>().join(","));
        self.csv.push('\n');
        // Objects keep the columns' order (serde_json's `preserve_order`).
        let object: Map<String, Value> = self
            .names
            .iter()
            .map(|n| n.to_string())
            .zip(row.iter().cloned())
            .collect();
        let text = serde_json::to_string_pretty(&object)
            .map_err(|e| format!("cannot lay out samples.json: {e}"))?;
        // Laid out as serde_json lays out the array of all objects: one level deeper. No value
        // holds a line break, so indenting every line is exact.
        self.json
            .push_str(if self.rows == 0 { "\n" } else { ",\n" });
        let indented: Vec<String> = text.lines().map(|line| format!("  {line}")).collect();
        self.json.push_str(&indented.join("\n"));
        self.rows += 1;
        Ok(())
    }

    fn write(mut self, dir: &Path) -> Result<(), String> {
        self.json
            .push_str(if self.rows == 0 { "]\n" } else { "\n]\n" });
        output::write(&dir.join("samples.csv"), self.csv.as_bytes())?;
        output::write(&dir.join("samples.json"), self.json.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_flops;

    #[test]
    fn flops_ranges_take_suffixes_and_open_ends() {
        assert_eq!(parse_flops("380M..420M"), Ok((380_000_000, 420_000_000)));
        assert_eq!(parse_flops("1.6G.."), Ok((1_600_000_000, u64::MAX)));
        assert_eq!(parse_flops("..500k"), Ok((0, 500_000)));
        assert!(parse_flops("400M").is_err());
        assert!(parse_flops("5G..1G").is_err());
        assert!(parse_flops("x..1G").is_err());
    }
}
