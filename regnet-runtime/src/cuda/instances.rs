//! Which kernel instances a plan launches on the GPU; the launcher picks each step's with
//! [`Kernel::new`] from the same ops, so the compiled set and the launches agree.

use std::collections::BTreeSet;

use super::Precision;
use super::source::{Kernel, tiles};
use crate::plan::Plan;

/// Every instance a forward pass of `plan` may launch (its feature copies included): each 1×1
/// convolution in every tile `precision` allows.
pub fn kernels(plan: &Plan, precision: Precision) -> BTreeSet<Kernel> {
    plan.steps()
        .iter()
        .flat_map(|step| tiles(precision).map(|tile| Kernel::new(step.op, tile)))
        .collect()
}
