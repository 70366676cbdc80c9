//! A network type compiled from a spec at build time, and what it knows before any weights load:
//! `cargo run --example architecture`.

use regnet::spec::{graph, stage_table};

regnet::regnet!("specs/regnety_1.6gf.yaml");

fn main() {
    let complexity = regnet::spec::Complexity {
        flops: RegNetY1_6GF::FLOPS,
        params: RegNetY1_6GF::PARAMS,
        acts: RegNetY1_6GF::ACTS,
    };
    println!(
        "{} takes {:?} images",
        RegNetY1_6GF::NAME,
        RegNetY1_6GF::INPUT_SHAPE
    );
    print!("{}", stage_table(&RegNetY1_6GF::ARCHITECTURE, &complexity));

    let graph = RegNetY1_6GF::graph();
    let convolutions = graph
        .node_weights()
        .filter(|node| matches!(node.op, graph::Op::Conv { .. }))
        .count();
    println!(
        "graph: {} operations ({convolutions} convolutions), {} edges",
        graph.node_count(),
        graph.edge_count()
    );
}
