//! The network as a graph with one node per operation, each with its static shapes.

use std::fmt::{self, Write};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::INPUT_CHANNELS;
use crate::architecture::{Architecture, Block};

/// A feature map's shape without the batch dimension: channels × height × width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of channels.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl Shape {
    /// A square feature map of `channels` × `size` × `size` (RegNet maps are always square).
    pub const fn new(channels: usize, size: usize) -> Self {
        Shape {
            channels,
            height: size,
            width: size,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// One operation of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The image batch.
    Input,
    /// A k×k convolution with padding (k - 1) / 2.
    Conv {
        /// Kernel side: 3 for the stem and the blocks' `b`, 1 otherwise.
        kernel: usize,
        /// Stride, 1 or 2.
        stride: usize,
        /// Number of groups; 1 is a dense convolution.
        groups: usize,
        /// Whether it has a bias; the graph's convolutions never do, as each feeds a BN.
        bias: bool,
    },
    /// Batch normalization (eps 1e-5, momentum 0.1 in pycls, torchvision and timm).
    BatchNorm,
    /// Rectified linear unit, `max(0, x)`.
    Relu,
    /// Squeeze-and-excitation: global average pool, 1×1 conv to `width`, ReLU, 1×1 conv back,
    /// sigmoid, channel-wise product with the input.
    SqueezeExcite {
        /// Squeeze channels, from the block's input width (not its bottleneck width).
        width: usize,
    },
    /// The residual sum of the block's two branches.
    Add,
    /// Average over height and width, down to 1×1, before the classifier.
    GlobalAvgPool,
    /// The classifier, with bias.
    Linear,
}

impl Op {
    /// A short lowercase name, used in DOT labels and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv { .. } => "conv",
            Op::BatchNorm => "batch_norm",
            Op::Relu => "relu",
            Op::SqueezeExcite { .. } => "se",
            Op::Add => "add",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Linear => "linear",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Conv {
                kernel,
                stride,
                groups,
                bias,
            } => {
                write!(f, "conv {kernel}×{kernel}")?;
                if stride != 1 {
                    write!(f, "/{stride}")?;
                }
                if groups != 1 {
                    write!(f, " groups={groups}")?;
                }
                if bias {
                    f.write_str(" +bias")?;
                }
                Ok(())
            }
            Op::SqueezeExcite { width } => write!(f, "se {width}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// A node: the operation, its pycls-style name (`s1.b1.f.a`) and its static shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Dotted module path; operations with weights use pycls's state-dict prefixes
    /// (`stem.conv`, `s1.b1.proj`, `s1.b1.f.b_bn`, `head.fc`).
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Shape of the input (for [`Op::Add`], of each of its two equal-shaped inputs).
    pub input: Shape,
    /// Shape of the output.
    pub output: Shape,
}

/// The network graph; edges carry data from producer to consumer.
pub type Graph = DiGraph<Node, ()>;

/// The graph crate [`Graph`] is a type of, re-exported so users name the version it was built
/// with (`regnet::spec::graph::petgraph::visit::…`).
pub use petgraph;

/// Builds the operation graph of an architecture.
pub fn build(architecture: &Architecture<'_>) -> Graph {
    let mut builder = Builder {
        graph: Graph::new(),
    };
    let image = Shape::new(INPUT_CHANNELS, architecture.resolution);
    let input = builder.node("input", Op::Input, &[], image, image);
    let stem = Shape::new(architecture.stem_width, architecture.stem_size());
    let mut x = builder.conv_bn_relu("stem.conv", "stem.bn", "stem.relu", input, 3, 2, 1, stem);
    for block in architecture.blocks() {
        x = builder.block(&block, x);
    }
    let last = builder.graph[x].output;
    let pooled = Shape::new(last.channels, 1);
    let pool = builder.node("head.pool", Op::GlobalAvgPool, &[x], last, pooled);
    let logits = Shape::new(architecture.num_classes, 1);
    builder.node("head.fc", Op::Linear, &[pool], pooled, logits);
    builder.graph
}

struct Builder {
    graph: Graph,
}

impl Builder {
    fn node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[NodeIndex],
        input: Shape,
        output: Shape,
    ) -> NodeIndex {
        let node = self.graph.add_node(Node {
            name: name.to_owned(),
            op,
            input,
            output,
        });
        for &from in inputs {
            self.graph.add_edge(from, node, ());
        }
        node
    }

    fn conv(
        &mut self,
        name: &str,
        from: NodeIndex,
        kernel: usize,
        stride: usize,
        groups: usize,
        output: Shape,
    ) -> NodeIndex {
        let input = self.graph[from].output;
        let op = Op::Conv {
            kernel,
            stride,
            groups,
            bias: false,
        };
        self.node(name, op, &[from], input, output)
    }

    fn batch_norm(&mut self, name: &str, from: NodeIndex) -> NodeIndex {
        let shape = self.graph[from].output;
        self.node(name, Op::BatchNorm, &[from], shape, shape)
    }

    fn relu(&mut self, name: &str, from: NodeIndex) -> NodeIndex {
        let shape = self.graph[from].output;
        self.node(name, Op::Relu, &[from], shape, shape)
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_bn_relu(
        &mut self,
        conv: &str,
        bn: &str,
        relu: &str,
        from: NodeIndex,
        kernel: usize,
        stride: usize,
        groups: usize,
        output: Shape,
    ) -> NodeIndex {
        let x = self.conv(conv, from, kernel, stride, groups, output);
        let x = self.batch_norm(bn, x);
        self.relu(relu, x)
    }

    /// pycls `ResBottleneckBlock`, named as pycls names its modules.
    fn block(&mut self, block: &Block, input: NodeIndex) -> NodeIndex {
        let p = format!("s{}.b{}", block.stage, block.index);
        let bottleneck_in = Shape::new(block.bottleneck_width, block.in_size);
        let bottleneck = Shape::new(block.bottleneck_width, block.out_size);
        let output = Shape::new(block.width, block.out_size);
        let shortcut = if block.has_projection() {
            let proj = self.conv(&format!("{p}.proj"), input, 1, block.stride, 1, output);
            self.batch_norm(&format!("{p}.bn"), proj)
        } else {
            input
        };
        let a = self.conv_bn_relu(
            &format!("{p}.f.a"),
            &format!("{p}.f.a_bn"),
            &format!("{p}.f.a_relu"),
            input,
            1,
            1,
            1,
            bottleneck_in,
        );
        let mut b = self.conv_bn_relu(
            &format!("{p}.f.b"),
            &format!("{p}.f.b_bn"),
            &format!("{p}.f.b_relu"),
            a,
            3,
            block.stride,
            block.groups,
            bottleneck,
        );
        if let Some(width) = block.se_width {
            b = self.node(
                &format!("{p}.f.se"),
                Op::SqueezeExcite { width },
                &[b],
                bottleneck,
                bottleneck,
            );
        }
        let c = self.conv(&format!("{p}.f.c"), b, 1, 1, 1, output);
        let c = self.batch_norm(&format!("{p}.f.c_bn"), c);
        let sum = self.node(&format!("{p}.add"), Op::Add, &[shortcut, c], output, output);
        self.relu(&format!("{p}.relu"), sum)
    }
}

/// The graph in Graphviz DOT, one line per node and edge, in forward order.
pub fn to_dot(graph: &Graph, title: &str) -> String {
    let mut dot = String::new();
    let _ = writeln!(dot, "digraph {title:?} {{");
    dot.push_str("  node [shape=box, fontname=\"monospace\"];\n");
    for index in graph.node_indices() {
        let node = &graph[index];
        let label = if node.input == node.output {
            format!("{}\\n{}\\n{}", node.name, node.op, node.output)
        } else {
            format!(
                "{}\\n{}\\n{} → {}",
                node.name, node.op, node.input, node.output
            )
        };
        let _ = writeln!(dot, "  n{} [label=\"{label}\"];", index.index());
    }
    for edge in graph.raw_edges() {
        let _ = writeln!(
            dot,
            "  n{} -> n{};",
            edge.source().index(),
            edge.target().index()
        );
    }
    dot.push_str("}\n");
    dot
}
