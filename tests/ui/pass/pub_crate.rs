mod zoo {
    regnet::regnet!(pub(crate) Backbone = "../../../../specs/regnety_200mf.yaml");
}

fn main() {
    assert_eq!(zoo::Backbone::NAME, "RegNetY-200MF");
    let widths: Vec<usize> = zoo::Backbone::STAGES.iter().map(|s| s.width).collect();
    assert_eq!(widths, [24, 56, 152, 368]);
    let _workspace = zoo::Backbone::workspace(1).unwrap();
}
