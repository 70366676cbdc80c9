regnet::regnet!("../../../../tests/ui/specs/syntax_error.yaml");

fn main() {}
