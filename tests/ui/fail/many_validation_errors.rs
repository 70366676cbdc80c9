regnet::regnet!("../../../../tests/ui/specs/many_validation_errors.yaml");

fn main() {}
