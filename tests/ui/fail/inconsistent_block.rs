use regnet::runtime::layers::{Block, wired};

// 5 groups cannot split a 24-wide bottleneck.
const _: () = wired::<Block<32, 24, 24, 5, 0, 2, 112, 56>, Block<24, 24, 24, 3, 0, 1, 56, 56>>();

// Stride 2 takes 112 pixels to 56, not 55.
const _: () = wired::<Block<32, 24, 24, 3, 0, 2, 112, 55>, Block<24, 24, 24, 3, 0, 1, 55, 55>>();

fn main() {}
