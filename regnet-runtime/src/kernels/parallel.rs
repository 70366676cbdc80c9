//! Splitting a kernel's work across the threads of the workspace's pool.

use rayon::prelude::*;

/// Runs `task(i)` for every i in 0..tasks: inline when one thread is enough, else on the current
/// rayon pool (the workspace's persistent pool, entered once per forward pass).
pub fn for_each_task(threads: usize, tasks: usize, task: impl Fn(usize) + Sync + Send) {
    if threads <= 1 || tasks <= 1 {
        (0..tasks).for_each(task);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// Splits `total` items into at most `parts` nearly equal contiguous ranges; returns range `i`.
pub fn chunk(total: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    let base = total / parts;
    let extra = total % parts;
    let start = i * base + i.min(extra);
    start..start + base + usize::from(i < extra)
}

#[cfg(test)]
mod tests {
    use super::chunk;

    #[test]
    fn chunks_cover_everything_once() {
        for total in 0..40 {
            for parts in 1..9 {
                let mut next = 0;
                for i in 0..parts {
                    let range = chunk(total, parts, i);
                    assert_eq!(range.start, next);
                    next = range.end;
                }
                assert_eq!(next, total);
            }
        }
    }
}
