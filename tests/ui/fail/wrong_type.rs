regnet::regnet!("../../../../tests/ui/specs/wrong_type.yaml");

fn main() {}
