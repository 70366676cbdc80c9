//! `regnet graph --format json`: the operation graph as one JSON object.

use std::io::{self, Write};

use regnet_spec::graph::{Graph, Op, Shape};
use serde::Serialize;

#[derive(Serialize)]
struct GraphJson<'a> {
    name: &'a str,
    nodes: Vec<NodeJson<'a>>,
    /// `[from, to]` node ids, in the order the graph was built.
    edges: Vec<[usize; 2]>,
}

/// A node with its operation's attributes inline; an operation without attributes has none of
/// the optional keys.
#[derive(Serialize)]
struct NodeJson<'a> {
    /// The node's index, as in the DOT output's `n{id}`.
    id: usize,
    name: &'a str,
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stride: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bias: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<usize>,
    input: [usize; 3],
    output: [usize; 3],
}

pub fn write(out: &mut impl Write, graph: &Graph, name: &str) -> io::Result<()> {
    let nodes = graph
        .node_indices()
        .map(|index| {
            let node = &graph[index];
            let mut json = NodeJson {
                id: index.index(),
                name: &node.name,
                op: node.op.kind(),
                kernel: None,
                stride: None,
                groups: None,
                bias: None,
                width: None,
                input: dims(node.input),
                output: dims(node.output),
            };
            match node.op {
                Op::Conv {
                    kernel,
                    stride,
                    groups,
                    bias,
                } => {
                    json.kernel = Some(kernel);
                    json.stride = Some(stride);
                    json.groups = Some(groups);
                    json.bias = Some(bias);
                }
                Op::SqueezeExcite { width } => json.width = Some(width),
                // Listed rather than `_` so that a new operation with attributes fails to
                // compile here instead of silently losing them.
                Op::Input | Op::BatchNorm | Op::Relu | Op::Add | Op::GlobalAvgPool | Op::Linear => {
                }
            }
            json
        })
        .collect();
    let edges = graph
        .raw_edges()
        .iter()
        .map(|edge| [edge.source().index(), edge.target().index()])
        .collect();
    let document = GraphJson { name, nodes, edges };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)
}

fn dims(shape: Shape) -> [usize; 3] {
    [shape.channels, shape.height, shape.width]
}
