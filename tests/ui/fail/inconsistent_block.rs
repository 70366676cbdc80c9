use regnet::runtime::layers::Block;

// 5 groups cannot split a 24-wide bottleneck, and stride 2 takes 112 pixels to 56, not 55.
fn main() {
    let _groups = Block::<32, 24, 24, 5, 0, 2, 112, 56>::new();
    let _size = Block::<32, 24, 24, 3, 0, 2, 112, 55>::new();
}
