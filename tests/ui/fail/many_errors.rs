// d: 0, g: 0 and an unknown key `depth`: key, type and rule errors are all reported in one
// build, one error per problem, in file order.
regnet::regnet!("../../../../tests/ui/specs/many_errors.yaml");

fn main() {}
