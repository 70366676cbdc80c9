use regnet::runtime::layers::{Block, wired};

// A block producing 24 channels at 56×56 feeding one that expects 56 channels at 28×28.
const _: () = wired::<Block<32, 24, 24, 3, 0, 2, 112, 56>, Block<56, 152, 152, 19, 0, 2, 28, 14>>();

fn main() {}
