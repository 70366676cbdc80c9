regnet::regnet!("../../../../tests/ui/specs/num_classes_zero.yaml");

fn main() {}
