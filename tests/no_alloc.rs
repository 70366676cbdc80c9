//! Once a workspace exists, a forward pass makes no heap allocation, on one thread or several.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use regnet::runtime::{Isa, Options};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

regnet::regnet!(Net = "specs/regnety_200mf.yaml");

#[test]
fn forward_passes_do_not_allocate() {
    let net = Net::random(7).unwrap();
    // A heap batch: two 224×224 images as one NCHW slice (arrays this large would sit on the
    // test thread's stack in an unoptimized build).
    let images = vec![0.25f32; 2 * 3 * 224 * 224];
    for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar] {
        for threads in [1, 2] {
            let options = Options {
                threads,
                isa,
                features: true,
                ..Options::default()
            };
            let mut workspace = Net::workspace_with(2, options).unwrap();
            // The first pass may let the thread pool settle; the second must not allocate.
            net.forward_slice(&images, &mut workspace).unwrap();
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            let top = net.forward_slice(&images, &mut workspace).unwrap()[0];
            let stages = net
                .forward_features(&images, &mut workspace)
                .unwrap()
                .1
                .stages();
            let after = ALLOCATIONS.load(Ordering::SeqCst);
            assert_eq!(
                after - before,
                0,
                "{isa:?} with {threads} threads allocated"
            );
            assert!(top.is_finite() && stages == 4);
        }
    }
}

#[test]
fn networks_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Net>();
    assert_send_sync::<regnet::runtime::Workspace>();
}
