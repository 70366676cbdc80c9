regnet::regnet!("../../../../tests/ui/specs/empty.yaml");

fn main() {}
