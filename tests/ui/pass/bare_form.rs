regnet::regnet!("../../../../specs/regnety_200mf.yaml");

fn main() {
    assert_eq!(RegNetY200MF::NAME, "RegNetY-200MF");
    assert_eq!(RegNetY200MF::FLOPS, 199_519_076);
    let widths: Vec<usize> = RegNetY200MF::STAGES.iter().map(|s| s.width).collect();
    assert_eq!(widths, [24, 56, 152, 368]);
    assert!(RegNetY200MF::graph().node_count() > 0);
    let net = RegNetY200MF::random(0).unwrap();
    let mut workspace = RegNetY200MF::workspace_with(1, regnet::runtime::Options { threads: 1, ..Default::default() }).unwrap();
    let images = vec![[[[0.5f32; 224]; 224]; 3]];
    let logits: &[[f32; 1000]] = net.forward(&images, &mut workspace).unwrap();
    assert_eq!(logits.len(), 1);
}
