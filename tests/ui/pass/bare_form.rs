regnet::regnet!("../../../../specs/regnety_200mf.yaml");

fn main() {
    assert_eq!(RegNetY200MF::NAME, "RegNetY-200MF");
    assert_eq!(RegNetY200MF::FLOPS, 199_519_076);
    assert_eq!(RegNetY200MF::STAGES.map(|s| s.width), [24, 56, 152, 368]);
    assert!(RegNetY200MF::graph().node_count() > 0);
    let _net = RegNetY200MF::new();
}
