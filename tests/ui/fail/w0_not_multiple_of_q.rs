regnet::regnet!("../../../../tests/ui/specs/w0_not_multiple_of_q.yaml");

fn main() {}
