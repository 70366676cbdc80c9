regnet::regnet!("../../../../tests/ui/specs/g_zero.yaml");

fn main() {}
