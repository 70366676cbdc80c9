//! The human-readable stage table, shared by `regnet inspect` and the snapshot tests.

use std::fmt::Write;

use crate::architecture::{Architecture, Complexity, Stage};
use crate::graph::Shape;

/// Stands for "no value": no SE, or no later blocks to have one.
const NONE: &str = "–";

const HEADER: [&str; 10] = [
    "stage",
    "depth",
    "width",
    "group width",
    "groups",
    "bottleneck width",
    "stride",
    "SE width",
    "input",
    "output",
];

/// The stages as an aligned table (numbers right-aligned, shapes meeting at an arrow), then the
/// exact complexity with an abbreviated figure beside each count.
pub fn stage_table(architecture: &Architecture<'_>, complexity: &Complexity) -> String {
    let rows: Vec<[String; 10]> = architecture
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| stage_row(i + 1, stage))
        .collect();
    let widths = rows
        .iter()
        .fold(HEADER.map(|h| h.chars().count()), |mut widths, row| {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
            widths
        });
    let mut table = String::new();
    write_row(&mut table, &widths, &HEADER.map(String::from));
    for row in &rows {
        write_row(&mut table, &widths, row);
    }
    table.push('\n');
    let counts = [
        ("flops", complexity.flops, 1e9, "GF"),
        ("params", complexity.params, 1e6, "M"),
        ("acts", complexity.acts, 1e6, "M"),
    ]
    // f64 rounding only touches the abbreviated figure; the exact count is printed beside it.
    .map(|(label, count, scale, unit)| (label, grouped(count), count as f64 / scale, unit));
    let number_width = counts.iter().map(|c| c.1.len()).max().unwrap_or(0);
    for (label, exact, scaled, unit) in counts {
        let _ = writeln!(
            table,
            "{label:<6}  {exact:>number_width$} ({scaled:.3} {unit})"
        );
    }
    table
}

fn stage_row(number: usize, stage: &Stage) -> [String; 10] {
    let se = match (stage.se_width, stage.se_width_rest) {
        (Some(first), Some(rest)) => format!("{first}/{rest}"),
        (Some(first), None) => format!("{first}/{NONE}"),
        (None, _) => NONE.to_owned(),
    };
    [
        number.to_string(),
        stage.depth.to_string(),
        stage.width.to_string(),
        stage.group_width.to_string(),
        stage.groups().to_string(),
        stage.bottleneck_width.to_string(),
        stage.stride.to_string(),
        se,
        Shape::new(stage.in_width, stage.in_size).to_string(),
        Shape::new(stage.width, stage.out_size).to_string(),
    ]
}

/// Right-aligns the numbers; the output shape is left-aligned so lines carry no trailing spaces.
fn write_row(table: &mut String, widths: &[usize; 10], row: &[String; 10]) {
    let [numbers @ .., input, output] = row;
    for (cell, width) in numbers.iter().zip(widths) {
        let _ = write!(table, "{cell:>width$}  ");
    }
    let _ = writeln!(table, "{input:>width$} → {output}", width = widths[8]);
}

/// `1612087326` → `1,612,087,326`.
fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn groups_digits_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_612_087_326), "1,612,087,326");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
    }
}
