//! Workspaces that cannot exist are errors, and thread counts are bounded. (Kept out of
//! `no_alloc.rs`, whose counting allocator sees every thread of its test binary.)

use regnet::runtime::workspace::MAX_THREADS;
use regnet::runtime::{Options, RunError};

regnet::regnet!(Net = "specs/regnety_200mf.yaml");

#[test]
fn impossible_workspaces_are_errors() {
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    for capacity in [usize::MAX, usize::MAX / 2, 1 << 50] {
        assert!(
            matches!(
                Net::workspace_with(capacity, options),
                Err(RunError::WorkspaceTooLarge { .. })
            ),
            "capacity {capacity}"
        );
    }
}

#[test]
fn thread_counts_are_bounded() {
    for threads in [0, 100_000, usize::MAX] {
        let workspace = Net::workspace_with(
            1,
            Options {
                threads,
                ..Options::default()
            },
        )
        .unwrap();
        assert!(
            (1..=MAX_THREADS).contains(&workspace.options().threads),
            "{threads}"
        );
    }
}
