//! Passes the optimization level this crate is compiled at to its code, so that the runtime
//! can tell a user whose debug build compiles its kernels unoptimized (about 90× slower).

fn main() {
    let level = std::env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo::rustc-env=REGNET_RUNTIME_OPT_LEVEL={level}");
    println!("cargo::rerun-if-env-changed=OPT_LEVEL");
}
