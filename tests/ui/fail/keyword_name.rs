regnet::regnet!("../../../../tests/ui/specs/keyword_name.yaml");

fn main() {}
