regnet::regnet!("../../../../tests/ui/specs/b_not_positive.yaml");

fn main() {}
