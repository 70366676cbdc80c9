regnet::regnet!("../../../../tests/ui/specs/many_parse_errors.yaml");

fn main() {}
