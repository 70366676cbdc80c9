//! A pass on the application's own rayon pool (`Pool::Rayon`): the workspace starts no threads
//! of its own, and the results are bit-identical to the same split on the workspace's team. One
//! test in its own binary, so that no other test's threads are counted.

use regnet::runtime::{Options, Pool};

regnet::regnet!(Net = "tests/fixtures/concurrency/regnety_200mf_96px.yaml");

/// This process's threads, from /proc (by count: a new thread names itself only once it runs).
#[cfg(target_os = "linux")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn a_pass_on_the_callers_rayon_pool_starts_no_threads_and_matches_the_team() {
    let net = Net::random(5).unwrap();
    let input: Vec<f32> = (0..3 * 3 * 96 * 96)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let two = |pool| Options {
        threads: 2,
        pool,
        ..Options::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .thread_name(|i| format!("app-{i}"))
        .build()
        .unwrap();

    #[cfg(target_os = "linux")]
    let before = threads();
    let mut on_rayon = Net::workspace_with(3, two(Pool::Rayon)).unwrap();
    #[cfg(target_os = "linux")]
    assert_eq!(threads(), before, "a Pool::Rayon workspace started threads");
    let logits = pool.install(|| net.forward_slice(&input, &mut on_rayon).unwrap().to_vec());
    #[cfg(target_os = "linux")]
    assert_eq!(
        threads(),
        before,
        "a pass on the caller's pool started threads"
    );
    // Outside any pool: rayon's global one.
    let global = net.forward_slice(&input, &mut on_rayon).unwrap().to_vec();

    let mut own = Net::workspace_with(3, two(Pool::Own)).unwrap();
    let reference = net.forward_slice(&input, &mut own).unwrap();
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&logits), bits(reference));
    assert!(global.iter().all(|v| v.is_finite()));
}
