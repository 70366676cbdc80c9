//! `regnet sample`: points of the RegNet design spaces as spec files, with their complexity.

use std::io::{self, Write};
use std::path::Path;

use regnet_spec::sample::{self, Filter, Sample, Space};
use serde::Serialize;

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

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    d: u32,
    w0: u32,
    wa: f64,
    wm: f64,
    g: u32,
    b: u32,
    se: bool,
    stages: usize,
    depths: Vec<usize>,
    widths: Vec<usize>,
    flops: u64,
    params: u64,
    acts: u64,
}

/// The table's and the CSV's columns: name, width in the table, left-aligned.
const COLUMNS: [(&str, usize, bool); 14] = [
    ("name", 11, true),
    ("d", 2, false),
    ("w0", 3, false),
    ("wa", 5, false),
    ("wm", 5, false),
    ("g", 2, false),
    ("b", 1, false),
    ("se", 5, true),
    ("stages", 6, false),
    ("depths", 14, true),
    ("widths", 22, true),
    ("flops", 11, false),
    ("params", 9, false),
    ("acts", 9, false),
];

impl Row<'_> {
    /// The row's values in the order of `COLUMNS`.
    fn cells(&self) -> [String; 14] {
        [
            self.name.to_owned(),
            self.d.to_string(),
            self.w0.to_string(),
            self.wa.to_string(),
            self.wm.to_string(),
            self.g.to_string(),
            self.b.to_string(),
            self.se.to_string(),
            self.stages.to_string(),
            join(&self.depths),
            join(&self.widths),
            self.flops.to_string(),
            self.params.to_string(),
            self.acts.to_string(),
        ]
    }
}

fn row(sample: &Sample) -> Row<'_> {
    let p = &sample.params;
    let network = &sample.network;
    Row {
        name: &sample.name,
        d: p.d,
        w0: p.w0,
        wa: p.wa,
        wm: p.wm,
        g: p.g,
        b: p.b,
        se: p.se,
        stages: network.stages.len(),
        depths: network.stages.iter().map(|s| s.depth).collect(),
        widths: network.stages.iter().map(|s| s.width).collect(),
        flops: network.complexity.flops,
        params: network.complexity.params,
        acts: network.complexity.acts,
    }
}

/// Stage depths or widths as one space-separated field.
fn join(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ")
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
    let rows: Vec<Row<'_>> = samples.iter().map(row).collect();
    let line = |cells: &[String]| {
        COLUMNS
            .iter()
            .zip(cells)
            .map(|(&(_, width, left), cell)| {
                if left {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    writeln!(
        out,
        "{}",
        line(&COLUMNS.map(|(name, _, _)| name.to_owned()))
    )?;
    for r in &rows {
        writeln!(out, "{}", line(&r.cells()))?;
    }
    writeln!(
        out,
        "{} kept of {drawn} drawn (seed {})",
        rows.len(),
        request.seed
    )?;
    if let Some(dir) = request.output
        && let Err(error) = write_files(dir, &samples, &rows)
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

fn write_files(dir: &Path, samples: &[Sample], rows: &[Row<'_>]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for sample in samples {
        std::fs::write(dir.join(format!("{}.yaml", sample.name)), &sample.yaml)?;
    }
    let mut csv = COLUMNS.map(|(name, _, _)| name).join(",") + "\n";
    for r in rows {
        csv.push_str(&r.cells().join(","));
        csv.push('\n');
    }
    std::fs::write(dir.join("samples.csv"), csv)?;
    let json = serde_json::to_string_pretty(rows).map_err(io::Error::other)?;
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
