//! Why a workspace's threads are a spinning `Team` and not a rayon pool: the time of a parallel
//! step of 100 µs (4 tasks of 50 µs on 2 threads) right after a serial stretch of 0 µs to 1 ms,
//! as a pass has them (the SE's two small layers, an uneven split). Rayon's idle workers go to
//! sleep, and waking one costs tens of microseconds on a virtual machine.
//!
//! `cargo run --release -p regnet-runtime --example step_after_gap`

use std::time::{Duration, Instant};

use rayon::prelude::*;
use regnet_runtime::kernels::parallel::{Team, for_each_task};

const STEPS: usize = 1000;

fn spin(time: Duration) {
    let start = Instant::now();
    while start.elapsed() < time {
        std::hint::spin_loop();
    }
}

/// Median, 10th and 90th percentile of `STEPS` steps of `step` after `gap` each, in µs.
fn time(gap: Duration, step: impl Fn()) -> [f64; 3] {
    let mut times: Vec<f64> = (0..STEPS)
        .map(|_| {
            spin(gap);
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    [STEPS / 2, STEPS / 10, STEPS * 9 / 10].map(|i| times[i])
}

fn main() {
    let task = || spin(Duration::from_micros(50));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("threads start");
    let mut team = Team::new(2).expect("threads start");
    println!("gap µs   rayon median (p10–p90)   team median (p10–p90), ideal 100 µs");
    for gap in [0, 20, 50, 200, 1000].map(Duration::from_micros) {
        let rayon = pool.install(|| time(gap, || (0..4).into_par_iter().for_each(|_| task())));
        let team = team.install(|| time(gap, || for_each_task(2, 4, |_| task())));
        println!(
            "{:6}   {:6.1} ({:.1}–{:.1})      {:6.1} ({:.1}–{:.1})",
            gap.as_micros(),
            rayon[0],
            rayon[1],
            rayon[2],
            team[0],
            team[1],
            team[2]
        );
    }
}
