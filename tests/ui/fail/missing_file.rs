regnet::regnet!("../../../../tests/ui/specs/does_not_exist.yaml");

fn main() {}
