//! A crate that denies missing docs: everything `regnet!` makes public is documented.
#![deny(missing_docs)]

regnet::regnet!("../../../../specs/regnetx_200mf.yaml");
regnet::regnet!(pub Backbone = "../../../../specs/regnety_200mf.yaml");

fn main() {
    assert_eq!(RegNetX200MF::NAME, "RegNetX-200MF");
    assert_eq!(Backbone::NUM_CLASSES, 1000);
}
