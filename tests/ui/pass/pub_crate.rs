mod zoo {
    regnet::regnet!(pub(crate) Backbone = "../../../../specs/regnety_200mf.yaml");
}

fn main() {
    assert_eq!(zoo::Backbone::NAME, "RegNetY-200MF");
    assert_eq!(zoo::Backbone::STAGES.map(|s| s.width), [24, 56, 152, 368]);
    let _workspace = zoo::Backbone::workspace(1).unwrap();
}
