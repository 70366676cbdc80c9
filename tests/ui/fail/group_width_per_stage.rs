regnet::regnet!("../../../../tests/ui/specs/group_width_per_stage.yaml");

fn main() {}
