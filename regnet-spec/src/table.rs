//! The human-readable stage table, shared by `regnet inspect` and the snapshot tests.

use std::fmt::Write;

use crate::architecture::{Architecture, Complexity};

const HEADERS: [&str; 9] = [
    "stage",
    "depth",
    "width",
    "group w",
    "groups",
    "bottleneck",
    "stride",
    "SE first/rest",
    "pixels in → out",
];

/// The stages as an aligned text table, then the complexity with exact counts.
pub fn stage_table(architecture: &Architecture<'_>, complexity: &Complexity) -> String {
    let mut rows: Vec<[String; 9]> = Vec::with_capacity(architecture.stages.len() + 1);
    rows.push(HEADERS.map(str::to_owned));
    for (i, s) in architecture.stages.iter().enumerate() {
        let se = match (s.se_width, s.se_width_rest) {
            (Some(first), Some(rest)) => format!("{first}/{rest}"),
            (Some(first), None) => format!("{first}/–"),
            _ => "–".to_owned(),
        };
        rows.push([
            format!("s{}", i + 1),
            s.depth.to_string(),
            s.width.to_string(),
            s.group_width.to_string(),
            s.groups().to_string(),
            s.bottleneck_width.to_string(),
            s.stride.to_string(),
            se,
            format!("{} → {}", s.in_size, s.out_size),
        ]);
    }
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &width))| {
                let pad = width - cell.chars().count();
                // Names and the size column read left to right; numbers align on the right.
                if c == 0 || c == HEADERS.len() - 1 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(table, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(
        table,
        "stem {}→{} ch, {} → {} px; head {} → {} classes",
        crate::INPUT_CHANNELS,
        architecture.stem_width,
        architecture.resolution,
        architecture.stem_size(),
        architecture.last_width(),
        architecture.num_classes
    );
    let _ = writeln!(
        table,
        "flops  {:>16} ({:.3} GF, multiply-adds)",
        grouped(complexity.flops),
        complexity.flops as f64 / 1e9
    );
    let _ = writeln!(
        table,
        "params {:>16} ({:.3} M)",
        grouped(complexity.params),
        complexity.params as f64 / 1e6
    );
    let _ = writeln!(
        table,
        "acts   {:>16} ({:.3} M)",
        grouped(complexity.acts),
        complexity.acts as f64 / 1e6
    );
    table
}

/// 1612087326 → "1,612,087,326".
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_612_087_326), "1,612,087,326");
    }
}
