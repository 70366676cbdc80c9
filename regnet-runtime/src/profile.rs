//! Per-step times of forward passes, for `regnet bench --profile`. The profiler knows steps, not
//! backends: a backend hands each step's work to [`Profile::time`].

use crate::plan::{Part, Step};

/// The time of every step of forward passes.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Every step run, in order, pass after pass.
    pub steps: Vec<StepTiming>,
}

/// One run of one step of a forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTiming {
    /// Where it ran: 0 for the stem, 1.. for the stages, one past the last stage for the head.
    pub stage: usize,
    /// The layer it belongs to.
    pub part: Part,
    /// Its multiply-adds, for the whole batch, as pycls counts them.
    pub flops: u64,
    /// The multiply-adds the backend ran for it: fewer than `flops` where it computes a
    /// convolution with Winograd's transform (whose additions are not counted).
    pub multiply_adds: u64,
    /// How long it took.
    pub seconds: f64,
}

impl Profile {
    /// Runs `work`, step `step` of a pass over `batch` images that runs `multiply_adds` per
    /// image, and records its time when there is a profile.
    pub(crate) fn time<R>(
        profile: &mut Option<&mut Profile>,
        (step, multiply_adds): (&Step, u64),
        batch: usize,
        work: impl FnOnce() -> R,
    ) -> R {
        match profile {
            None => work(),
            Some(profile) => {
                let start = std::time::Instant::now();
                let result = work();
                profile.record((step, multiply_adds), batch, start.elapsed().as_secs_f64());
                result
            }
        }
    }

    /// Records `seconds` as the time of step `step` over `batch` images, running
    /// `multiply_adds` per image (for steps whose work a backend interleaves with another's,
    /// timing each piece).
    pub(crate) fn record(
        &mut self,
        (step, multiply_adds): (&Step, u64),
        batch: usize,
        seconds: f64,
    ) {
        self.steps.push(StepTiming {
            stage: step.stage,
            part: step.part,
            flops: step.flops * batch as u64,
            multiply_adds: multiply_adds * batch as u64,
            seconds,
        });
    }
}
