regnet::regnet!("../../../../tests/ui/specs/unknown_key.yaml");

fn main() {}
