regnet::regnet!(42);

fn main() {}
