regnet::regnet!(pub Net = "../../../../specs/regnety_200mf.yaml");

fn main() {
    assert_eq!(Net::NAME, "RegNetY-200MF");
    assert_eq!(Net::FLOPS, 199_519_076);
    let widths: Vec<usize> = Net::STAGES.iter().map(|s| s.width).collect();
    assert_eq!(widths, [24, 56, 152, 368]);
    assert!(Net::graph().node_count() > 0);
    assert_eq!(Net::COMPAT_ALTERNATIVE, None);
}
