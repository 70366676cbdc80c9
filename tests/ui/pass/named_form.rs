regnet::regnet!(pub Net = "../../../../specs/regnety_200mf.yaml");

fn main() {
    assert_eq!(Net::NAME, "RegNetY-200MF");
    assert_eq!(Net::FLOPS, 199_519_076);
    assert_eq!(Net::STAGES.map(|s| s.width), [24, 56, 152, 368]);
    assert!(Net::graph().node_count() > 0);
    assert_eq!(Net::COMPAT_ALTERNATIVE, None);
}
