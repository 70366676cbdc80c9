//! Splitting a kernel's work across the threads of a workspace's team.
//!
//! A pass runs a hundred or more parallel steps, some of 100 µs. A thread pool whose idle
//! threads sleep makes each step that follows a short serial stretch (the SE's two small layers)
//! or an uneven split wait for a wake-up. A [`Team`]'s helpers instead spin on a counter while
//! passes run, as OpenMP's and ONNX Runtime's pools do, yield after [`SPIN_HOT`] and sleep only
//! after [`SPIN`] without work. `cargo run --release -p regnet-runtime --example
//! step_after_gap` on this project's 2-vCPU virtual machine (AMD EPYC): a 100 µs step after
//! 50 µs–1 ms of serial work took 101 µs (median of 1000) on a team, 163–185 µs on rayon.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper waits for the next job before it sleeps: longer than any serial
/// stretch of a pass, and than the gap between back-to-back passes.
const SPIN: Duration = Duration::from_millis(2);
/// How much of that it spins without yielding its core: past this, it yields between checks,
/// so that threads with work (other workspaces' passes) get the core on a busy machine.
const SPIN_HOT: Duration = Duration::from_micros(100);

/// Threads that run the tasks of [`for_each_task`] calls made inside [`Team::install`]: the
/// installing thread and `threads - 1` helpers, started once.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

/// What the caller and the helpers share.
struct Shared {
    /// The job of the current generation, on the caller's stack (valid until every helper has
    /// finished or skipped it).
    job: AtomicPtr<Job<'static>>,
    /// Jobs published so far.
    generation: AtomicUsize,
    /// Per helper: the last generation it finished or was skipped for, ×2, plus 1 while it runs
    /// that generation's job.
    states: Vec<AtomicUsize>,
    stop: AtomicBool,
    /// Whether a helper's task panicked (the caller panics too, once no helper can reach the
    /// job).
    panicked: AtomicBool,
    /// Helpers asleep (changed only under `sleep`, read without it), and what wakes them.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

/// One `for_each_task` call: the tasks are claimed one by one by whoever is free.
struct Job<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    next: AtomicUsize,
}

impl Job<'_> {
    fn run(&self) {
        loop {
            let task = self.next.fetch_add(1, Ordering::Relaxed);
            if task >= self.tasks {
                return;
            }
            (self.task)(task);
        }
    }
}

const fn idle(generation: usize) -> usize {
    generation * 2
}

const fn busy(generation: usize) -> usize {
    generation * 2 + 1
}

/// What runs the `for_each_task` calls made on a thread.
#[derive(Clone, Copy)]
enum Installed {
    /// Nothing: tasks run inline.
    Nothing,
    /// A team's shared state, valid while its `Team::install` runs.
    Team(*const Shared),
    /// The rayon pool the thread belongs to (`install_rayon`).
    Rayon,
}

thread_local! {
    /// What is installed on this thread, and whether this thread is inside one of a team's
    /// tasks (where a nested `for_each_task` runs inline).
    static CURRENT: Cell<Installed> = const { Cell::new(Installed::Nothing) };
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with `installed` behind this thread's `for_each_task` calls, restoring what was
/// there before even if `work` panics (so no thread keeps a pointer to a dropped team).
fn with_installed<R>(installed: Installed, work: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|current| current.replace(installed));
    struct Restore(Installed);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(previous);
    work()
}

/// Runs `work` with the rayon pool this thread is in (the global one outside any) behind its
/// `for_each_task` calls: the kernels run on the caller's threads instead of a team's.
pub fn install_rayon<R>(work: impl FnOnce() -> R) -> R {
    with_installed(Installed::Rayon, work)
}

impl Team {
    /// A team of `threads` (the caller included); `None` when the system refuses a thread.
    pub fn new(threads: usize) -> Option<Team> {
        let helpers = threads.saturating_sub(1);
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            generation: AtomicUsize::new(0),
            states: (0..helpers).map(|_| AtomicUsize::new(idle(0))).collect(),
            stop: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut team = Team {
            shared: Arc::clone(&shared),
            helpers: Vec::with_capacity(helpers),
        };
        for index in 0..helpers {
            let shared = Arc::clone(&shared);
            let helper = std::thread::Builder::new()
                .name(format!("regnet-{}", index + 1))
                .spawn(move || shared.help(index))
                .ok()?;
            team.helpers.push(helper);
        }
        Some(team)
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `work` on this thread with the team behind its `for_each_task` calls. `&mut`: one
    /// thread at a time publishes the team's jobs.
    pub fn install<R>(&mut self, work: impl FnOnce() -> R) -> R {
        // Helpers asleep since the last pass start waking now, while the pass begins.
        self.shared.wake_sleepers();
        with_installed(Installed::Team(Arc::as_ptr(&self.shared)), work)
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_sleepers();
        for helper in self.helpers.drain(..) {
            // A helper that panicked has nothing left to clean up.
            let _ = helper.join();
        }
    }
}

impl Shared {
    /// Wakes the helpers asleep. SeqCst against `help`'s: a helper either counts itself asleep
    /// before this reads the count, or sees the new generation (or stop) before it sleeps.
    fn wake_sleepers(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
    }

    /// Runs `tasks` tasks on the calling thread and the helpers; returns when all are done and
    /// no helper can still reach the job.
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let job = Job {
            task,
            tasks,
            next: AtomicUsize::new(0),
        };
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        // The pointer's lifetime is erased for the helpers; the loop below keeps `job` alive
        // until no helper can reach it.
        self.job.store(
            (&raw const job).cast::<Job<'static>>().cast_mut(),
            Ordering::Release,
        );
        self.generation.store(generation, Ordering::SeqCst);
        self.wake_sleepers();
        // A panic here must not unwind past the wait below while helpers may read `job`.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
        for state in &self.states {
            // A helper that has not started this job never will: mark it skipped. One that
            // has is waited for.
            while let Err(now) = state.compare_exchange(
                idle(generation - 1),
                idle(generation),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                if now == idle(generation) {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        if self.panicked.swap(false, Ordering::AcqRel) {
            panic!("a kernel task panicked on a helper thread");
        }
    }

    /// A helper's life: wait for each generation, run its job unless skipped, until stopped.
    fn help(&self, index: usize) {
        let state = &self.states[index];
        let mut seen = 0;
        loop {
            let mut idle_since = Instant::now();
            while self.generation.load(Ordering::Acquire) == seen {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                let idle = idle_since.elapsed();
                if idle < SPIN_HOT {
                    std::hint::spin_loop();
                    continue;
                }
                if idle < SPIN {
                    std::thread::yield_now();
                    continue;
                }
                let guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                if self.generation.load(Ordering::SeqCst) == seen
                    && !self.stop.load(Ordering::SeqCst)
                {
                    let _guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                idle_since = Instant::now();
            }
            let next = seen + 1;
            if state
                .compare_exchange(idle(seen), busy(next), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // SAFETY: the caller of `run` for generation `next` stored this job before
                // publishing `next` (read above with Acquire), and waits, before the job goes
                // out of scope, until this helper's state leaves `busy(next)`.
                let job = unsafe { &*self.job.load(Ordering::Acquire) };
                IN_TASK.with(|in_task| in_task.set(true));
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
                IN_TASK.with(|in_task| in_task.set(false));
                if ran.is_err() {
                    self.panicked.store(true, Ordering::Release);
                }
                state.store(idle(next), Ordering::Release);
            }
            seen = next;
        }
    }
}

/// Runs `task(i)` for every i in 0..tasks: on the team or rayon pool installed on this thread
/// when there is one, `threads` allows more than one, and this is not already one of a team's
/// tasks; else inline.
pub fn for_each_task(threads: usize, tasks: usize, task: impl Fn(usize) + Sync) {
    if threads <= 1 || tasks <= 1 {
        return (0..tasks).for_each(task);
    }
    match CURRENT.with(Cell::get) {
        Installed::Rayon => {
            use rayon::prelude::*;
            (0..tasks).into_par_iter().for_each(&task);
        }
        Installed::Team(shared) if !IN_TASK.with(Cell::get) => {
            // SAFETY: `Team::install` set this pointer for the duration of its `work` and the
            // team (which owns an `Arc` of `Shared`) outlives that call.
            let shared = unsafe { &*shared };
            IN_TASK.with(|in_task| in_task.set(true));
            // Reset even when a task panics, so the thread can run teams again.
            struct Leave;
            impl Drop for Leave {
                fn drop(&mut self) {
                    IN_TASK.with(|in_task| in_task.set(false));
                }
            }
            let _leave = Leave;
            shared.run(tasks, &task);
        }
        _ => (0..tasks).for_each(task),
    }
}

/// Runs `work(part)` for each part given, each moved into one task of [`for_each_task`]: for
/// work split into disjoint mutable pieces up front (the parts are the array's leading `Some`s).
pub fn for_each_part<T: Send, const N: usize>(
    threads: usize,
    parts: [Option<T>; N],
    work: impl Fn(T) + Sync,
) {
    let tasks = parts.iter().take_while(|part| part.is_some()).count();
    let parts = parts.map(Mutex::new);
    for_each_task(threads, tasks, |task| {
        let part = parts[task].lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(part) = part {
            work(part);
        }
    });
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
    use super::{Team, chunk, for_each_task};
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    #[test]
    fn a_team_runs_every_task_once_and_nested_calls_inline() {
        for threads in 1..5 {
            let mut team = Team::new(threads).expect("threads start");
            for tasks in [0, 1, 2, 3, 7, 64] {
                let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                let nested = AtomicUsize::new(0);
                team.install(|| {
                    for_each_task(threads, tasks, |i| {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                        for_each_task(threads, 3, |_| {
                            nested.fetch_add(1, Ordering::Relaxed);
                        });
                    })
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                assert_eq!(nested.load(Ordering::Relaxed), 3 * tasks);
            }
            // Helpers asleep after their spin still take the next job.
            std::thread::sleep(super::SPIN * 3);
            let sum = AtomicUsize::new(0);
            team.install(|| {
                for_each_task(threads, 100, |i| {
                    sum.fetch_add(i, Ordering::Relaxed);
                })
            });
            assert_eq!(sum.load(Ordering::Relaxed), 4950);
        }
    }
}
