regnet::regnet!(Net = "../../../../specs/regnetx_200mf.yaml");

// Stage 1 produces 24 channels at 56×56; stage 3 consumes 56 channels at 28×28.
fn skip_a_stage(net: &Net) {
    regnet::runtime::layers::wired(&net.s1, &net.s3);
}

fn main() {
    skip_a_stage(&Net::new());
}
