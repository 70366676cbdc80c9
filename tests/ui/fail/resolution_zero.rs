regnet::regnet!("../../../../tests/ui/specs/resolution_zero.yaml");

fn main() {}
