regnet::regnet!("/etc/regnet/regnetx_200mf.yaml");

fn main() {}
