//! `regnet inspect`: the stage table and complexity, for people or as JSON.

use std::io::{self, Write};

use regnet_spec::{CompiledSpec, stage_table};
use serde::Serialize;

#[derive(Serialize)]
struct Summary<'a> {
    name: &'a str,
    stages: Vec<StageSummary>,
    flops: u64,
    params: u64,
    acts: u64,
}

#[derive(Serialize)]
struct StageSummary {
    depth: usize,
    width: usize,
    group_width: usize,
    bottleneck_width: usize,
    stride: usize,
    se_width: Option<usize>,
}

/// One JSON object on one line, so that scripts can read it with a single line read.
pub fn write_json(out: &mut impl Write, network: &CompiledSpec, name: &str) -> io::Result<()> {
    let summary = Summary {
        name,
        stages: network
            .stages
            .iter()
            .map(|s| StageSummary {
                depth: s.depth,
                width: s.width,
                group_width: s.group_width,
                bottleneck_width: s.bottleneck_width,
                stride: s.stride,
                se_width: s.se_width,
            })
            .collect(),
        flops: network.complexity.flops,
        params: network.complexity.params,
        acts: network.complexity.acts,
    };
    serde_json::to_writer(&mut *out, &summary)?;
    writeln!(out)
}

pub fn write_table(out: &mut impl Write, network: &CompiledSpec, name: &str) -> io::Result<()> {
    writeln!(out, "{name}  {}", parameters(network))?;
    writeln!(out)?;
    let table = stage_table(&network.architecture(name), &network.complexity);
    out.write_all(table.as_bytes())
}

fn parameters(network: &CompiledSpec) -> String {
    let spec = &network.spec;
    let mut line = format!("{} se={}", spec.parameters(), spec.se);
    if let Some(ratio) = spec.se_ratio {
        line.push_str(&format!(" se_ratio={ratio}"));
    }
    if spec.resolution != 224 || spec.num_classes != 1000 || spec.stem_w != 32 || spec.q != 8 {
        line.push_str(&format!(
            " resolution={} num_classes={} stem_w={} q={}",
            spec.resolution, spec.num_classes, spec.stem_w, spec.q
        ));
    }
    line.push_str(&format!(" compat={}", spec.compat));
    line
}
