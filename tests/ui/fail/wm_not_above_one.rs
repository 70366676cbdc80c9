regnet::regnet!("../../../../tests/ui/specs/wm_not_above_one.yaml");

fn main() {}
