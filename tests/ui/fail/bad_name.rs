regnet::regnet!("../../../../tests/ui/specs/bad_name.yaml");

fn main() {}
