//! A user of a framework over `regnet`, with no `regnet` in its own manifest.

regnet_wrapper::network!(pub Backbone = "../../../specs/regnetx_200mf.yaml");

#[cfg(test)]
mod tests {
    use super::Backbone;

    #[test]
    fn a_type_made_through_the_wrapper_runs() {
        assert_eq!(Backbone::NAME, "RegNetX-200MF");
        let model = Backbone::random(0).unwrap();
        let mut workspace = Backbone::workspace(1).unwrap();
        let logits = model
            .forward_slice(&vec![0.5; 3 * 224 * 224], &mut workspace)
            .unwrap();
        assert_eq!(logits.len(), 1000);
    }
}
