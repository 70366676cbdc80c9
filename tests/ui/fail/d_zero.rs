regnet::regnet!("../../../../tests/ui/specs/d_zero.yaml");

fn main() {}
