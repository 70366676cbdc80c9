regnet::regnet!("../../../../tests/ui/specs/wa_negative.yaml");

fn main() {}
