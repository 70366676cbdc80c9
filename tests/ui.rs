//! Compile-time diagnostics of `regnet!`: every bad spec or bad invocation is a compile error
//! that names the file, position, field and rule; good specs compile into usable types.
//!
//! trybuild builds each case in `target/tests/trybuild/regnet/`, which is the cases'
//! CARGO_MANIFEST_DIR, so spec paths in the cases start with `../../../../`.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
