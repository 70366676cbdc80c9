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

/// A CPU workspace holds every buffer role of the plan in host memory, sized by the layout; one
/// for a GPU holds only the logits, and a network on the CPU refuses it instead of reading
/// buffers that are not there.
#[test]
fn host_buffers_follow_the_device() {
    use regnet::runtime::plan::Buffer;

    let capacity = 3;
    let bytes = |buffers: &[Buffer]| {
        buffers
            .iter()
            .map(|&buffer| Net::WORKSPACE.floats(buffer) * capacity * size_of::<f32>())
            .sum::<usize>()
    };
    let cpu = Net::workspace_with(capacity, Options::default()).unwrap();
    let all_but_kept: Vec<Buffer> = Buffer::ALL
        .into_iter()
        .filter(|&b| b != Buffer::Kept)
        .collect();
    assert_eq!(cpu.host_bytes(), bytes(&all_but_kept));
    assert!(Net::WORKSPACE.floats(Buffer::Reduced) > 0 && Net::WORKSPACE.floats(Buffer::Gate) > 0);
    #[cfg(feature = "cuda")]
    {
        use regnet::runtime::Device;
        let options = Options {
            device: Device::Cuda(0),
            ..Options::default()
        };
        let mut gpu = Net::workspace_with(capacity, options).unwrap();
        assert_eq!(gpu.host_bytes(), bytes(&[Buffer::Logits]));
        let network = Net::random(0).unwrap();
        let image = vec![0.0; 3 * 224 * 224];
        assert_eq!(
            network.forward_slice(&image, &mut gpu).err(),
            Some(RunError::WorkspaceDevice {
                device: Device::Cuda(0)
            })
        );
    }
}
