//! `regnet sample`: points of the RegNet design spaces as spec files, with their complexity.

use std::io::{self, Write};
use std::path::Path;

use regnet_spec::sample::{self, Filter, Sample, Space};
use regnet_spec::{RegNetParameters, Stage};
use serde_json::{Map, Value};

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

pub struct Request<'a> {
    pub space: Space,
    pub count: usize,
    pub seed: u64,
    pub filter: Filter,
    pub attempts: usize,
    pub output: Option<&'a Path>,
}

/// Samples, prints the table and writes the specs, `samples.csv` and `samples.json`.
pub fn run(out: &mut impl Write, request: &Request<'_>) -> io::Result<Result<(), String>> {
    let (samples, drawn) = sample::sample(
        request.space,
        request.count,
        request.filter,
        request.seed,
        request.attempts,
    );
    let columns = columns(request.space);
    let rows: Vec<Vec<Value>> = samples
        .iter()
        .map(|sample| columns.iter().map(|c| (c.value)(sample)).collect())
        .collect();
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
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(cell).collect()))?;
    }
    writeln!(
        out,
        "{} kept of {drawn} drawn (seed {})",
        rows.len(),
        request.seed
    )?;
    if let Some(dir) = request.output
        && let Err(error) = write_files(dir, &samples, &columns, &rows)
    {
        return Ok(Err(format!("{}: {error}", dir.display())));
    }
    if rows.len() < request.count {
        return Ok(Err(format!(
            "found {} of {} samples in {drawn} draws; widen --flops or --stages, or raise --attempts",
            rows.len(),
            request.count
        )));
    }
    Ok(Ok(()))
}

fn write_files(
    dir: &Path,
    samples: &[Sample],
    columns: &[&Column],
    rows: &[Vec<Value>],
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for sample in samples {
        std::fs::write(dir.join(format!("{}.yaml", sample.name)), &sample.yaml)?;
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let mut csv = names.join(",") + "\n";
    for row in rows {
        csv.push_str(&row.iter().map(cell).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    std::fs::write(dir.join("samples.csv"), csv)?;
    // Objects keep the columns' order (serde_json's `preserve_order`).
    let objects: Vec<Map<String, Value>> = rows
        .iter()
        .map(|row| {
            names
                .iter()
                .map(|n| n.to_string())
                .zip(row.iter().cloned())
                .collect()
        })
        .collect();
    let json = serde_json::to_string_pretty(&objects).map_err(io::Error::other)?;
    std::fs::write(dir.join("samples.json"), json + "\n")
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
