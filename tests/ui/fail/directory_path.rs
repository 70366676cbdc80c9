regnet::regnet!("../../../../tests/ui/specs");

fn main() {}
