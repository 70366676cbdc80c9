// The per-stage (AnyNet) form compiles like the RegNet form: widths as written, groups from the
// group widths.
regnet::regnet!(AnyNet = "../../../../specs/anynetx_e_400mf.yaml");

fn main() {
    let widths: Vec<usize> = AnyNet::ARCHITECTURE.stages.iter().map(|s| s.width).collect();
    assert_eq!(widths, [32, 96, 464, 952]);
    let groups: Vec<usize> = AnyNet::ARCHITECTURE.stages.iter().map(|s| s.groups()).collect();
    assert_eq!(groups, [4, 12, 58, 119]);
}
